//! Samples per runtime and the markdown reports.

use std::time::Duration;

#[derive(Default)]
pub struct Samples {
    /// (a) `run` of /bin/true + `delete`.
    pub run_ms: Vec<f64>,
    /// (b) `create` + `start` + wait for exit + `delete`.
    pub lifecycle_ms: Vec<f64>,
    /// (c) `state` of a created container.
    pub state_ms: Vec<f64>,
    /// (d) `exec` of /bin/true in a running container.
    pub exec_ms: Vec<f64>,
    pub run_rss_kib: Vec<f64>,
    pub create_rss_kib: Vec<f64>,
    /// System calls of `run` (runtime and container, `strace -f -c`) and
    /// of the `delete --force` after it.
    pub run_syscalls: Vec<f64>,
    pub delete_syscalls: Vec<f64>,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn median(values: &[f64]) -> f64 {
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
    /// /proc/loadavg's 1, 5 and 15 minute averages before and after the
    /// measurements: other work on the machine makes the numbers noisy.
    pub load_at_start: String,
    pub load_at_end: String,
}

/// The first three fields of /proc/loadavg.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    if fields.len() == 3 {
        fields.join(" ")
    } else {
        "unknown".to_owned()
    }
}

/// A median with `decimals`, or "–" when there are no samples.
pub fn fmt(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "–".to_owned()
    }
}

/// `value / base` as "1.23x", or "–" when either is missing.
pub fn ratio(value: f64, base: f64) -> String {
    let r = value / base;
    if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "–".to_owned()
    }
}

/// The title and the date and machine lines every report starts with.
pub fn print_machine(title: &str, machine: &Machine) {
    println!("## {title}\n");
    println!("- date: {}", machine.date);
    println!("- kernel: {}, cores: {}", machine.kernel, machine.cores);
    println!("- cgroups: {}", machine.cgroups);
    println!(
        "- load average (1, 5, 15 min): {} before, {} after",
        machine.load_at_start, machine.load_at_end
    );
}

pub fn print(machine: &Machine, rows: &[Row<'_>], notes: &[String]) {
    print_machine("rrun lifecycle benchmark", machine);
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
    print_goals(rows);
}

fn print_medians(rows: &[Row<'_>]) {
    println!();
    println!("| runtime | run + delete (ms) | create + start + wait + delete (ms) | state (ms) | exec (ms) | footprint: peak RSS of run / create (MiB) | syscalls: run / delete |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let s = row.samples;
        let rss = |v: &[f64]| fmt(median(v) / 1024.0, 1);
        println!(
            "| {} | {} | {} | {} | {} | {} / {} | {} / {} |",
            row.name,
            fmt(median(&s.run_ms), 2),
            fmt(median(&s.lifecycle_ms), 2),
            fmt(median(&s.state_ms), 2),
            fmt(median(&s.exec_ms), 2),
            rss(&s.run_rss_kib),
            rss(&s.create_rss_kib),
            fmt(median(&s.run_syscalls), 0),
            fmt(median(&s.delete_syscalls), 0),
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
    println!("| runtime | run + delete | create + start + wait + delete | state | exec | syscalls of run |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let s = row.samples;
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.name,
            ratio(median(&s.run_ms), median(&b.run_ms)),
            ratio(median(&s.lifecycle_ms), median(&b.lifecycle_ms)),
            ratio(median(&s.state_ms), median(&b.state_ms)),
            ratio(median(&s.exec_ms), median(&b.exec_ms)),
            ratio(median(&s.run_syscalls), median(&b.run_syscalls)),
        );
    }
}

/// One goal of issue 14: rrun's median over the reference's, and the
/// largest ratio that meets it (None: no goal, the ratio is reported).
struct Goal {
    what: &'static str,
    unit: &'static str,
    reference: &'static str,
    pick: fn(&Samples) -> &[f64],
    limit: Option<f64>,
    /// The limit is strict (`<`) rather than `<=`.
    strict: bool,
}

const GOALS: &[Goal] = &[
    Goal {
        what: "run + delete <= 0.5 x crun",
        unit: "ms",
        reference: "crun",
        pick: |s| &s.run_ms,
        limit: Some(0.5),
        strict: false,
    },
    Goal {
        what: "run + delete <= 3 x floor",
        unit: "ms",
        reference: "floor",
        pick: |s| &s.run_ms,
        limit: Some(3.0),
        strict: false,
    },
    Goal {
        what: "create + start + wait + delete <= 0.7 x crun",
        unit: "ms",
        reference: "crun",
        pick: |s| &s.lifecycle_ms,
        limit: Some(0.7),
        strict: false,
    },
    Goal {
        what: "state <= 0.5 x crun",
        unit: "ms",
        reference: "crun",
        pick: |s| &s.state_ms,
        limit: Some(0.5),
        strict: false,
    },
    Goal {
        what: "peak RSS of create <= crun's",
        unit: "KiB",
        reference: "crun",
        pick: |s| &s.create_rss_kib,
        limit: Some(1.0),
        strict: false,
    },
    Goal {
        what: "peak RSS of run <= crun's",
        unit: "KiB",
        reference: "crun",
        pick: |s| &s.run_rss_kib,
        limit: Some(1.0),
        strict: false,
    },
    Goal {
        what: "syscalls of run < crun's",
        unit: "calls",
        reference: "crun",
        pick: |s| &s.run_syscalls,
        limit: Some(1.0),
        strict: true,
    },
    Goal {
        what: "exec, to crun (no goal set)",
        unit: "ms",
        reference: "crun",
        pick: |s| &s.exec_ms,
        limit: None,
        strict: false,
    },
];

/// The goals of issue 14 (rrun against crun and the floor), each with the
/// measured ratio and whether it is met.
fn print_goals(rows: &[Row<'_>]) {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    println!();
    println!("Goals (rrun's median over the reference's):\n");
    println!("| goal | rrun | reference | ratio | result |");
    println!("|---|---:|---:|---:|---|");
    let Some(rrun) = find("rrun") else {
        println!("| all | – | – | – | n/a: rrun not measured |");
        return;
    };
    for goal in GOALS {
        let value = median((goal.pick)(rrun.samples));
        let (base, result) = match find(goal.reference) {
            None => (f64::NAN, format!("n/a: {} not measured", goal.reference)),
            Some(r) => {
                let base = median((goal.pick)(r.samples));
                let r = value / base;
                let result = match goal.limit {
                    _ if !r.is_finite() => "n/a: no samples".to_owned(),
                    None => "reported".to_owned(),
                    Some(limit) if (goal.strict && r < limit) || (!goal.strict && r <= limit) => {
                        "met".to_owned()
                    }
                    Some(_) => "**not met**".to_owned(),
                };
                (base, result)
            }
        };
        let decimals = if goal.unit == "ms" { 2 } else { 0 };
        let cell = |v: f64| match fmt(v, decimals) {
            v if v == "–" => v,
            v => format!("{v} {}", goal.unit),
        };
        println!(
            "| {} | {} | {} | {} | {result} |",
            goal.what,
            cell(value),
            cell(base),
            ratio(value, base),
        );
    }
}

/// One row of the engine benchmark: a runtime path and, per column, its
/// samples (None: that command cannot take this path).
pub struct EngineRow {
    pub name: String,
    pub cells: Vec<Option<Vec<f64>>>,
}

/// The engine benchmark's report: `intro` lines after the machine's, then
/// medians and their ratios to rrun's per column.
pub fn print_engines(machine: &Machine, intro: &[String], columns: &[&str], rows: &[EngineRow]) {
    print_machine("rrun under Docker and containerd", machine);
    for line in intro {
        println!("- {line}");
    }
    let medians: Vec<Vec<Option<f64>>> = rows
        .iter()
        .map(|r| r.cells.iter().map(|c| c.as_deref().map(median)).collect())
        .collect();
    let header = |unit: &str| {
        let titles: Vec<String> = columns.iter().map(|c| format!("{c}{unit}")).collect();
        println!("| runtime | {} |", titles.join(" | "));
        println!("|---|{}", "---:|".repeat(columns.len()));
    };
    let line = |name: &str, cells: Vec<String>| println!("| {name} | {} |", cells.join(" | "));
    println!();
    header(" (ms)");
    for (row, m) in rows.iter().zip(&medians) {
        let cells = m
            .iter()
            .map(|v| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}")))
            .collect();
        line(&row.name, cells);
    }
    let Some(base) = rows
        .iter()
        .position(|r| r.name == "rrun")
        .or((!rows.is_empty()).then_some(0))
    else {
        return;
    };
    let base_name = &rows[base].name;
    println!();
    println!("Ratio of medians to {base_name} (> 1: slower than {base_name}):\n");
    header("");
    for (row, m) in rows.iter().zip(&medians) {
        let cells = m
            .iter()
            .zip(&medians[base])
            .map(|(v, b)| match (v, b) {
                (Some(v), Some(b)) => format!("{:.2}x", v / b),
                _ => "n/a".to_owned(),
            })
            .collect();
        line(&row.name, cells);
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
