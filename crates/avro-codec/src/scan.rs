//! Structural check of an Avro body against an arbitrary writer schema, run before the body is
//! handed to apache-avro on the general (schema-resolution) path.
//!
//! apache-avro allocates a buffer of the announced size before it reads a string, bytes or
//! collection (up to 512 MiB by default), so a 100-byte message with a huge length prefix would
//! cost a huge allocation. This scan walks the body without allocating and rejects every length
//! or count the remaining input cannot hold, out-of-range union and enum indexes, bad booleans,
//! nesting deeper than [`MAX_DEPTH`], and trailing bytes. What passes decodes in apache-avro
//! within the size of the input (plus a small allowance for zero-width collection items).

use apache_avro::{
    Schema,
    schema::{
        ArraySchema, DecimalSchema, EnumSchema, FixedSchema, InnerDecimalSchema, MapSchema,
        NamesRef, RecordSchema, UuidSchema,
    },
};

use crate::binary::{BodyError, BodyReader};

/// Deepest nesting of records, unions and collections a body may have.
pub(crate) const MAX_DEPTH: usize = 64;

/// Collection items allowed beyond one per remaining input byte, for items that encode to zero
/// bytes (`null`, empty records).
const ZERO_WIDTH_ITEM_ALLOWANCE: usize = 1024;

pub(crate) const TOO_DEEP: &str = "value nests deeper than 64 levels";
pub(crate) const BAD_BOOLEAN: &str = "boolean byte is neither 0 nor 1";
pub(crate) const INT_OUT_OF_RANGE: &str = "int value does not fit 32 bits";
pub(crate) const BAD_UNION_INDEX: &str = "union branch index out of range";
pub(crate) const BAD_ENUM_INDEX: &str = "enum symbol index out of range";
pub(crate) const BAD_BLOCK_COUNT: &str = "invalid collection block count";
pub(crate) const TOO_MANY_ITEMS: &str = "collection item count exceeds what the input can hold";
pub(crate) const UNRESOLVED_NAME: &str = "writer schema refers to an undefined named type";

/// Checks that `body` is exactly one well-formed value of `schema`.
pub(crate) fn scan_body(
    schema: &Schema,
    names: &NamesRef<'_>,
    body: &[u8],
) -> Result<(), BodyError> {
    let mut scanner = Scanner {
        reader: BodyReader::new(body),
        names,
        item_budget: body.len().saturating_add(ZERO_WIDTH_ITEM_ALLOWANCE),
    };
    scanner.value(schema, None, 0)?;
    scanner.reader.finish()
}

struct Scanner<'a, 'n, 's> {
    reader: BodyReader<'a>,
    names: &'n NamesRef<'s>,
    item_budget: usize,
}

impl Scanner<'_, '_, '_> {
    fn fail<T>(&self, offset: usize, reason: &'static str) -> Result<T, BodyError> {
        Err(BodyError { offset, reason })
    }

    fn value(
        &mut self,
        schema: &Schema,
        namespace: Option<&str>,
        depth: usize,
    ) -> Result<(), BodyError> {
        let start = self.offset();
        if depth > MAX_DEPTH {
            return self.fail(start, TOO_DEEP);
        }
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => match self.reader.take(1)? {
                [0 | 1] => Ok(()),
                _ => self.fail(start, BAD_BOOLEAN),
            },
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                let value = self.reader.read_long()?;
                if i32::try_from(value).is_ok() {
                    Ok(())
                } else {
                    self.fail(start, INT_OUT_OF_RANGE)
                }
            }
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => self.reader.read_long().map(drop),
            Schema::Float => self.reader.take(4).map(drop),
            Schema::Double => self.reader.take(8).map(drop),
            Schema::Bytes
            | Schema::String
            | Schema::BigDecimal
            | Schema::Uuid(UuidSchema::String | UuidSchema::Bytes)
            | Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Bytes,
                ..
            }) => self.reader.read_len_prefixed().map(drop),
            Schema::Fixed(FixedSchema { size, .. })
            | Schema::Uuid(UuidSchema::Fixed(FixedSchema { size, .. }))
            | Schema::Decimal(DecimalSchema {
                inner: InnerDecimalSchema::Fixed(FixedSchema { size, .. }),
                ..
            })
            | Schema::Duration(FixedSchema { size, .. }) => self.reader.take(*size).map(drop),
            Schema::Enum(EnumSchema { symbols, .. }) => {
                let index = self.reader.read_long()?;
                match usize::try_from(index) {
                    Ok(index) if index < symbols.len() => Ok(()),
                    _ => self.fail(start, BAD_ENUM_INDEX),
                }
            }
            Schema::Union(union) => {
                let index = self.reader.read_long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|index| union.variants().get(index));
                match branch {
                    Some(branch) => self.value(branch, namespace, depth + 1),
                    None => self.fail(start, BAD_UNION_INDEX),
                }
            }
            Schema::Array(ArraySchema { items, .. }) => {
                self.blocks(depth, |scanner| scanner.value(items, namespace, depth + 1))
            }
            Schema::Map(MapSchema { types, .. }) => self.blocks(depth, |scanner| {
                scanner.reader.read_len_prefixed()?;
                scanner.value(types, namespace, depth + 1)
            }),
            Schema::Record(RecordSchema { name, fields, .. }) => {
                let full_name = name.fully_qualified_name(namespace);
                for field in fields {
                    self.value(&field.schema, full_name.namespace(), depth + 1)?;
                }
                Ok(())
            }
            Schema::Ref { name } => {
                let full_name = name.fully_qualified_name(namespace);
                let names = self.names;
                match names.get(full_name.as_ref()) {
                    Some(target) => self.value(target, full_name.namespace(), depth + 1),
                    None => self.fail(start, UNRESOLVED_NAME),
                }
            }
        }
    }

    /// Walks the blocks of an array or map: a count, then that many items, until a zero count.
    /// A negative count is followed by the block's size in bytes, as the specification allows.
    fn blocks(
        &mut self,
        depth: usize,
        mut item: impl FnMut(&mut Self) -> Result<(), BodyError>,
    ) -> Result<(), BodyError> {
        if depth >= MAX_DEPTH {
            return self.fail(self.offset(), TOO_DEEP);
        }
        loop {
            let start = self.offset();
            let count = self.reader.read_long()?;
            let count = match count {
                0 => return Ok(()),
                1.. => count,
                _ => {
                    self.reader.read_long()?;
                    match count.checked_neg() {
                        Some(count) => count,
                        None => return self.fail(start, BAD_BLOCK_COUNT),
                    }
                }
            };
            let Ok(count) = usize::try_from(count) else {
                return self.fail(start, BAD_BLOCK_COUNT);
            };
            if count > self.item_budget {
                return self.fail(start, TOO_MANY_ITEMS);
            }
            self.item_budget -= count;
            for _ in 0..count {
                item(self)?;
            }
        }
    }

    fn offset(&self) -> usize {
        self.reader.position()
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::schema::ResolvedSchema;

    use super::*;
    use crate::binary::{LENGTH_PAST_END, TRAILING_BYTES, TRUNCATED, write_long};

    fn check(schema_json: &str, body: &[u8]) -> Result<(), BodyError> {
        let schema = Schema::parse_str(schema_json).expect("test schema parses");
        let resolved = ResolvedSchema::try_from(&schema).expect("test schema resolves");
        scan_body(&schema, resolved.get_names(), body)
    }

    #[test]
    fn accepts_a_record_of_strings_and_longs() {
        let schema = r#"{"type":"record","name":"R","fields":[
            {"name":"a","type":"string"},{"name":"b","type":"long"}]}"#;
        assert_eq!(check(schema, &[0x02, b'x', 0x04]), Ok(()));
        assert_eq!(
            check(schema, &[0x02, b'x', 0x04, 0x00]).map_err(|e| e.reason),
            Err(TRAILING_BYTES)
        );
        assert_eq!(
            check(schema, &[0x7e, b'x']).map_err(|e| e.reason),
            Err(LENGTH_PAST_END)
        );
    }

    #[test]
    fn rejects_array_of_nulls_with_an_absurd_count() {
        let mut body = Vec::new();
        write_long(&mut body, 1 << 40);
        body.push(0);
        assert_eq!(
            check(r#"{"type":"array","items":"null"}"#, &body).map_err(|e| e.reason),
            Err(TOO_MANY_ITEMS)
        );
        let mut body = Vec::new();
        write_long(&mut body, 10);
        body.push(0);
        assert_eq!(check(r#"{"type":"array","items":"null"}"#, &body), Ok(()));
    }

    #[test]
    fn accepts_negative_block_counts_with_sizes() {
        let mut body = Vec::new();
        write_long(&mut body, -2);
        write_long(&mut body, 2);
        body.extend_from_slice(&[0x02, 0x04, 0x00]);
        assert_eq!(check(r#"{"type":"array","items":"long"}"#, &body), Ok(()));
    }

    #[test]
    fn rejects_bad_union_enum_and_boolean_values() {
        let union = r#"["null","string"]"#;
        assert_eq!(check(union, &[0x00]), Ok(()));
        assert_eq!(
            check(union, &[0x04]).map_err(|e| e.reason),
            Err(BAD_UNION_INDEX)
        );
        assert_eq!(
            check(union, &[0x01]).map_err(|e| e.reason),
            Err(BAD_UNION_INDEX)
        );
        let enumeration = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
        assert_eq!(check(enumeration, &[0x02]), Ok(()));
        assert_eq!(
            check(enumeration, &[0x04]).map_err(|e| e.reason),
            Err(BAD_ENUM_INDEX)
        );
        assert_eq!(
            check(r#""boolean""#, &[0x02]).map_err(|e| e.reason),
            Err(BAD_BOOLEAN)
        );
        assert_eq!(
            check(r#""boolean""#, &[]).map_err(|e| e.reason),
            Err(TRUNCATED)
        );
    }

    #[test]
    fn bounds_recursion_of_self_referencing_records() {
        let list = r#"{"type":"record","name":"Node","fields":[
            {"name":"next","type":["null","Node"]}]}"#;
        assert_eq!(check(list, &[0x02, 0x02, 0x00]), Ok(()));
        let deep = vec![0x02; 10_000];
        assert_eq!(check(list, &deep).map_err(|e| e.reason), Err(TOO_DEEP));
    }
}
