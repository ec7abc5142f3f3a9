//! Kafka's CreateAcls and DescribeAcls requests on the wire, to the plaintext listener's
//! anonymous super user: one round trip for any number of ACLs, where Kafka's ACL tool is a JVM
//! start (seconds) per principal, pattern type and operation set.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use local_stack::{Acl, AclOperation, AclResource};

/// CreateAcls and DescribeAcls, version 1 (the oldest Kafka 4 serves; not yet the flexible
/// encoding).
const CREATE_ACLS: (i16, i16) = (30, 1);
const DESCRIBE_ACLS: (i16, i16) = (29, 1);
/// ANY in Kafka's ResourceType, PatternType, AclOperation and AclPermissionType filters.
const ANY: u8 = 1;

/// One ACL as the protocol carries it: resource type, name, pattern type, principal, operation.
type WireAcl = (u8, String, u8, String, u8);

fn wire_acl(acl: &Acl) -> WireAcl {
    let (resource_type, name, pattern_type) = resource(&acl.resource);
    (
        resource_type,
        name.to_owned(),
        pattern_type,
        acl.principal.clone(),
        operation(acl.operation),
    )
}

/// Whether the broker's authorizer holds each of `acls` (`present`) or none of them: a
/// DescribeAcls answer comes from the broker's own copy of the ACLs, which follows the
/// controller's by a moment after CreateAcls or DeleteAcls returned.
pub(crate) fn acls_in_force(port: u16, acls: &[Acl], present: bool) -> Result<bool, String> {
    let mut body = vec![ANY];
    put_nullable_string(&mut body, None);
    body.push(ANY);
    put_nullable_string(&mut body, None);
    put_nullable_string(&mut body, None);
    body.extend([ANY, ANY]);
    let response = exchange(port, DESCRIBE_ACLS, &body).map_err(|error| error.to_string())?;
    let mut reader = Reader(&response);
    let _throttle_time_ms = reader.i32()?;
    let code = reader.i16()?;
    let message = reader.nullable_string()?;
    if code != 0 {
        return Err(format!(
            "DescribeAcls: error {code} {}",
            message.unwrap_or_default()
        ));
    }
    let mut held = Vec::new();
    for _ in 0..reader.i32()? {
        let resource_type = reader.i8()?;
        let name = reader.nullable_string()?.unwrap_or_default();
        let pattern_type = reader.i8()?;
        for _ in 0..reader.i32()? {
            let principal = reader.nullable_string()?.unwrap_or_default();
            let _host = reader.nullable_string()?;
            let operation = reader.i8()?;
            let _permission = reader.i8()?;
            held.push((
                resource_type,
                name.clone(),
                pattern_type,
                principal,
                operation,
            ));
        }
    }
    Ok(acls
        .iter()
        .all(|acl| held.contains(&wire_acl(acl)) == present))
}
const CORRELATION_ID: i32 = 0x0a_c1_5e;

/// Creates `acls` with one CreateAcls request to the broker on 127.0.0.1:`port`; the error
/// names each ACL the broker refused.
pub(crate) fn create_acls(port: u16, acls: &[Acl]) -> Result<(), String> {
    let mut body = Vec::new();
    put_i32(&mut body, len_i32(acls.len()));
    for acl in acls {
        let (resource_type, name, pattern_type, principal, operation) = wire_acl(acl);
        body.push(resource_type);
        put_string(&mut body, &name);
        body.push(pattern_type);
        put_string(&mut body, &principal);
        put_string(&mut body, "*");
        body.push(operation);
        body.push(ALLOW);
    }
    let response = exchange(port, CREATE_ACLS, &body).map_err(|error| error.to_string())?;
    let mut reader = Reader(&response);
    let _throttle_time_ms = reader.i32()?;
    let results = reader.i32()?;
    if usize::try_from(results).ok() != Some(acls.len()) {
        return Err(format!("{results} results for {} ACLs", acls.len()));
    }
    let mut refused = Vec::new();
    for acl in acls {
        let code = reader.i16()?;
        let message = reader.nullable_string()?;
        if code != 0 {
            refused.push(format!(
                "{acl:?}: error {code} {}",
                message.unwrap_or_default()
            ));
        }
    }
    match refused.is_empty() {
        true => Ok(()),
        false => Err(refused.join("; ")),
    }
}

/// ALLOW in Kafka's AclPermissionType.
const ALLOW: u8 = 3;

/// Kafka's ResourceType and PatternType codes (LITERAL 3, PREFIXED 4) and the resource name.
fn resource(resource: &AclResource) -> (u8, &str, u8) {
    const TOPIC: u8 = 2;
    const GROUP: u8 = 3;
    const CLUSTER: u8 = 4;
    const TRANSACTIONAL_ID: u8 = 5;
    const LITERAL: u8 = 3;
    const PREFIXED: u8 = 4;
    match resource {
        AclResource::Topic(name) => (TOPIC, name, LITERAL),
        AclResource::TopicPrefix(prefix) => (TOPIC, prefix, PREFIXED),
        AclResource::Group(name) => (GROUP, name, LITERAL),
        AclResource::TransactionalId(id) => (TRANSACTIONAL_ID, id, LITERAL),
        AclResource::TransactionalIdPrefix(prefix) => (TRANSACTIONAL_ID, prefix, PREFIXED),
        AclResource::Cluster => (CLUSTER, "kafka-cluster", LITERAL),
    }
}

/// Kafka's AclOperation codes.
fn operation(operation: AclOperation) -> u8 {
    match operation {
        AclOperation::Read => 3,
        AclOperation::Write => 4,
        AclOperation::Describe => 8,
        AclOperation::IdempotentWrite => 12,
    }
}

/// Sends one request (header version 1) and returns the response body after its header.
fn exchange(
    port: u16,
    (api_key, api_version): (i16, i16),
    body: &[u8],
) -> std::io::Result<Vec<u8>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    request.extend_from_slice(&api_key.to_be_bytes());
    request.extend_from_slice(&api_version.to_be_bytes());
    put_i32(&mut request, CORRELATION_ID);
    put_string(&mut request, "test-support-acls");
    request.extend_from_slice(body);
    let mut framed = Vec::with_capacity(request.len() + 4);
    put_i32(&mut framed, len_i32(request.len()));
    framed.extend_from_slice(&request);
    stream.write_all(&framed)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(std::io::Error::other)?;
    let mut response = vec![0u8; size];
    stream.read_exact(&mut response)?;
    let (header, response_body) = response.split_at(4.min(response.len()));
    if header != CORRELATION_ID.to_be_bytes() {
        return Err(std::io::Error::other(
            "the response answers another request",
        ));
    }
    Ok(response_body.to_vec())
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).expect("fewer than 2^31 items")
}

fn put_i32(buffer: &mut Vec<u8>, value: i32) {
    buffer.extend_from_slice(&value.to_be_bytes());
}

fn put_nullable_string(buffer: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => put_string(buffer, value),
        None => buffer.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_string(buffer: &mut Vec<u8>, value: &str) {
    let len = i16::try_from(value.len()).expect("a name shorter than 32 KiB");
    buffer.extend_from_slice(&len.to_be_bytes());
    buffer.extend_from_slice(value.as_bytes());
}

/// Reads big-endian fields off a response body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| "the response ends early".to_owned())?;
        self.0 = rest;
        Ok(*head)
    }

    fn i8(&mut self) -> Result<u8, String> {
        self.take().map(u8::from_be_bytes)
    }

    fn i16(&mut self) -> Result<i16, String> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.take().map(i32::from_be_bytes)
    }

    fn nullable_string(&mut self) -> Result<Option<String>, String> {
        let Ok(len) = usize::try_from(self.i16()?) else {
            return Ok(None);
        };
        if self.0.len() < len {
            return Err("the response ends early".to_owned());
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Some(String::from_utf8_lossy(text).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_field_by_field_and_never_past_their_end() {
        let mut body = Vec::new();
        body.extend_from_slice(&7i16.to_be_bytes());
        put_string(&mut body, "why");
        body.extend_from_slice(&(-1i16).to_be_bytes());
        let mut reader = Reader(&body);
        assert_eq!(reader.i16(), Ok(7));
        assert_eq!(reader.nullable_string(), Ok(Some("why".to_owned())));
        assert_eq!(reader.nullable_string(), Ok(None));
        assert!(reader.i32().is_err());
    }

    #[test]
    fn a_port_without_a_broker_is_an_error() {
        let [port] = crate::own_stack::free_ports();
        assert!(create_acls(port, &[]).is_err());
    }
}
