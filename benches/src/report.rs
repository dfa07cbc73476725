//! Samples per runtime and the markdown report.

use std::time::Duration;

#[derive(Default)]
pub struct Samples {
    /// (a) `run` of /bin/true + `delete`.
    pub run_ms: Vec<f64>,
    /// (b) `create` + `start` + wait for exit + `delete`.
    pub lifecycle_ms: Vec<f64>,
    /// (c) `state` of a created container.
    pub state_ms: Vec<f64>,
    pub run_rss_kib: Vec<f64>,
    pub create_rss_kib: Vec<f64>,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

pub struct Row<'a> {
    pub name: &'a str,
    pub version: String,
    pub samples: &'a Samples,
}

pub struct Machine {
    pub date: String,
    pub kernel: String,
    pub cores: usize,
    pub cgroups: &'static str,
    pub runs: usize,
}

pub fn print(machine: &Machine, rows: &[Row<'_>], notes: &[String]) {
    println!("## rrun lifecycle benchmark\n");
    println!("- date: {}", machine.date);
    println!("- kernel: {}, cores: {}", machine.kernel, machine.cores);
    println!("- cgroups: {}", machine.cgroups);
    println!(
        "- {} runs per runtime, interleaved round-robin; medians",
        machine.runs
    );
    for row in rows {
        println!("- {}: {}", row.name, row.version);
    }
    for note in notes {
        println!("- note: {note}");
    }
    print_medians(rows);
    print_ratios(rows);
}

fn print_medians(rows: &[Row<'_>]) {
    println!();
    println!("| runtime | run + delete (ms) | create + start + wait + delete (ms) | state (ms) | footprint: peak RSS of run / create (MiB) |");
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        let s = row.samples;
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.1} / {:.1} |",
            row.name,
            median(&s.run_ms),
            median(&s.lifecycle_ms),
            median(&s.state_ms),
            median(&s.run_rss_kib) / 1024.0,
            median(&s.create_rss_kib) / 1024.0,
        );
    }
}

/// Ratios of medians to rrun's (to the first runtime when rrun is absent).
fn print_ratios(rows: &[Row<'_>]) {
    let Some(base) = rows.iter().find(|r| r.name == "rrun").or(rows.first()) else {
        return;
    };
    let b = base.samples;
    println!();
    println!(
        "Ratio of medians to {} (> 1: slower than {}):\n",
        base.name, base.name
    );
    println!("| runtime | run + delete | create + start + wait + delete | state |");
    println!("|---|---:|---:|---:|");
    for row in rows {
        let s = row.samples;
        println!(
            "| {} | {:.2}x | {:.2}x | {:.2}x |",
            row.name,
            median(&s.run_ms) / median(&b.run_ms),
            median(&s.lifecycle_ms) / median(&b.lifecycle_ms),
            median(&s.state_ms) / median(&b.state_ms),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
