//! The bench plot, as a hand-written SVG (no plotting library in xtask): throughput bars on the
//! left, latency percentiles per rate on a log scale on the right, targets as dashed lines.

use serde_json::Value;
use std::fmt::Write;

pub(super) const FILE_NAME: &str = "throughput-latency.svg";

const WIDTH: f64 = 980.0;
const HEIGHT: f64 = 420.0;
const TOP: f64 = 66.0;
const BOTTOM: f64 = 350.0;
const PROCESSOR: &str = "#1f77b4";
const PASSTHROUGH: &str = "#7f7f7f";
const PRODUCER: &str = "#bcbd22";
const POISON: &str = "#ff7f0e";
const BROKER: &str = "#2ca02c";

pub(super) fn svg(results: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    throughput_panel(&mut out, results);
    latency_panel(&mut out, results);
    let machine = &results["machine"];
    let _ = writeln!(
        out,
        r##"<text x="10" y="{}" fill="#555">{}</text>"##,
        HEIGHT - 10.0,
        escape(&format!(
            "{} · {} cores · {} · {}",
            machine["cpu"].as_str().unwrap_or("?"),
            machine["cores"],
            machine["broker"].as_str().unwrap_or("?"),
            results["command"].as_str().unwrap_or_default()
        ))
    );
    out.push_str("</svg>\n");
    out
}

fn throughput_panel(out: &mut String, results: &Value) {
    let throughput = &results["summary"]["throughput"];
    let poison_key = throughput
        .as_object()
        .and_then(|map| {
            map.keys()
                .find(|key| key.starts_with("processor-poison"))
                .cloned()
        })
        .unwrap_or_default();
    let bars = [
        (
            "producer alone",
            throughput["producer"]["median"].as_f64(),
            PRODUCER,
        ),
        (
            "passthrough",
            throughput["passthrough"]["median"].as_f64(),
            PASSTHROUGH,
        ),
        (
            "processor",
            throughput["processor"]["median"].as_f64(),
            PROCESSOR,
        ),
        (
            "processor + poison",
            throughput[&poison_key]["median"].as_f64(),
            POISON,
        ),
    ];
    let left = 140.0;
    let right = 460.0;
    let _ = writeln!(
        out,
        r#"<text x="10" y="24" font-size="15" font-weight="bold">Throughput, events/s (median)</text>"#
    );
    let max = bars
        .iter()
        .filter_map(|(_, value, _)| *value)
        .fold(1.0, f64::max)
        * 1.15;
    let scale = |value: f64| left + (right - left) * value / max;
    let row = (BOTTOM - TOP) / bars.len() as f64;
    for (index, (label, value, color)) in bars.iter().enumerate() {
        let y = TOP + row * index as f64 + row * 0.2;
        let height = row * 0.6;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#,
            left - 6.0,
            y + height / 2.0 + 4.0
        );
        if let Some(value) = value {
            let _ = writeln!(
                out,
                r#"<rect x="{left}" y="{y:.1}" width="{:.1}" height="{height:.1}" fill="{color}"/>"#,
                scale(*value) - left
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                scale(*value) + 4.0,
                y + height / 2.0 + 4.0,
                thousands(*value)
            );
        }
    }
    if let Some(passthrough) = throughput["passthrough"]["median"].as_f64() {
        let x = scale(passthrough * 0.85);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="#d62728" stroke-dasharray="5,4"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{x:.1}" y="{}" fill="#d62728" text-anchor="middle">target 0.85 × passthrough</text>"##,
            BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{left}" y1="{TOP}" x2="{left}" y2="{BOTTOM}" stroke="#333"/>"##
    );
}

fn latency_panel(out: &mut String, results: &Value) {
    let left = 560.0;
    let right = WIDTH - 20.0;
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" font-size="15" font-weight="bold">End-to-end latency, ms (log scale)</text>"#,
        left - 50.0
    );
    let rows: Vec<&Value> = results["summary"]["latency_ms"]
        .as_array()
        .map(|rows| rows.iter().collect())
        .unwrap_or_default();
    let series = [
        ("processor p50", "processor", "p50", 0.45),
        ("processor p99", "processor", "p99", 0.75),
        ("processor p99.9", "processor", "p999", 1.0),
        ("passthrough p99", "passthrough", "p99", 0.0),
        ("broker p99 (1 hop)", "broker", "p99", 0.0),
    ];
    let max = rows
        .iter()
        .flat_map(|row| {
            series
                .iter()
                .filter_map(|(_, system, key, _)| row[*system][*key].as_f64())
        })
        .fold(10.0, f64::max);
    let (low, high) = (0.1f64.log10(), (max * 2.0).log10().ceil());
    let y_of = |ms: f64| BOTTOM - (BOTTOM - TOP) * (ms.max(0.1).log10() - low) / (high - low);
    let mut tick: f64 = 0.1;
    while tick.log10() <= high + 1e-9 {
        let y = y_of(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{tick}</text>"##,
            left - 6.0,
            y + 4.0
        );
        tick *= 10.0;
    }
    let target = y_of(10.0);
    let _ = writeln!(
        out,
        r##"<line x1="{left}" y1="{target:.1}" x2="{right}" y2="{target:.1}" stroke="#d62728" stroke-dasharray="5,4"/><text x="{right}" y="{:.1}" fill="#d62728" text-anchor="end">target p99 10 ms at 5k/s</text>"##,
        target - 4.0
    );
    let group = (right - left) / rows.len().max(1) as f64;
    let bar = group * 0.8 / series.len() as f64;
    for (index, row) in rows.iter().enumerate() {
        let x0 = left + group * index as f64 + group * 0.1;
        for (position, (_, system, key, opacity)) in series.iter().enumerate() {
            let Some(value) = row[*system][*key].as_f64() else {
                continue;
            };
            let (color, opacity) = series_style(system, *opacity);
            let x = x0 + bar * position as f64;
            let y = y_of(value);
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="{opacity}"><title>{system} {key}: {value:.2} ms</title></rect>"#,
                bar * 0.9,
                BOTTOM - y
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{} /s</text>"#,
            x0 + group * 0.4,
            BOTTOM + 16.0,
            thousands(row["rate"].as_f64().unwrap_or(0.0))
        );
    }
    for (index, (label, system, _, opacity)) in series.iter().enumerate() {
        // Two rows: the processor's percentiles, then the references.
        let x = left - 60.0 + 125.0 * (index % 3) as f64;
        let y = if index < 3 { 34.0 } else { 48.0 };
        let (color, opacity) = series_style(system, *opacity);
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{color}" fill-opacity="{opacity}"/><text x="{}" y="{}">{label}</text>"#,
            x + 14.0,
            y + 9.0
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{left}" y1="{TOP}" x2="{left}" y2="{BOTTOM}" stroke="#333"/>"##
    );
}

fn series_style(system: &str, opacity: f64) -> (&'static str, f64) {
    match system {
        "processor" => (PROCESSOR, opacity),
        "passthrough" => (PASSTHROUGH, 1.0),
        _ => (BROKER, 1.0),
    }
}

fn thousands(value: f64) -> String {
    group_digits(value, ',')
}

/// `value` rounded, with `separator` between groups of three digits.
pub(super) fn group_digits(value: f64, separator: char) -> String {
    let text = (value.round() as u64).to_string();
    let mut grouped = String::new();
    for (index, digit) in text.chars().enumerate() {
        if index > 0 && (text.len() - index).is_multiple_of(3) {
            grouped.push(separator);
        }
        grouped.push(digit);
    }
    grouped
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plot_is_svg_with_every_bar_labelled() {
        let results = json!({
            "machine": { "cpu": "cpu", "cores": 2, "broker": "Apache Kafka" },
            "command": "cargo xtask bench",
            "summary": {
                "throughput": {
                    "producer": { "median": 200000.0 },
                    "passthrough": { "median": 100000.0 },
                    "processor": { "median": 90000.0 },
                    "processor-poison-10": { "median": 85000.0 },
                },
                "latency_ms": [
                    { "rate": 1000, "processor": { "p50": 1.0, "p99": 3.0, "p999": 7.0 }, "passthrough": { "p99": 2.0 } },
                ],
            },
        });
        let svg = svg(&results);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for label in [
            "200,000",
            "100,000",
            "90,000",
            "85,000",
            "1,000 /s",
            "processor p99.9",
        ] {
            assert!(svg.contains(label), "missing {label}");
        }
    }
}
