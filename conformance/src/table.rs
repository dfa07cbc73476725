//! The requirement table, its notes and the summary lines.

use crate::harness::Runtime;
use crate::requirements::{Req, REQUIREMENTS};
use crate::{Results, Verdict};

pub fn short(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail(_) => "FAIL",
        Verdict::Skip(_) => "SKIP",
    }
}

/// A requirement's verdict for a runtime: FAIL if any of its cases failed,
/// PASS if any passed (and none failed), SKIP if all skipped, "-" if none ran.
fn row_verdict(req: &Req, runtime: &str, results: &Results) -> &'static str {
    let verdicts: Vec<&Verdict> = req
        .cases
        .iter()
        .filter_map(|c| results.get(&(c.to_string(), runtime.to_string())))
        .collect();
    if verdicts.is_empty() {
        return "-";
    }
    if verdicts.iter().any(|v| matches!(v, Verdict::Fail(_))) {
        "FAIL"
    } else if verdicts.iter().any(|v| matches!(v, Verdict::Pass)) {
        "PASS"
    } else {
        "SKIP"
    }
}

/// Print the table, the notes and the summary; true iff a case failed for
/// the first runtime.
pub fn print(runtimes: &[Runtime], results: &Results, notes: &[String]) -> bool {
    let names: Vec<&str> = runtimes.iter().map(|r| r.name.as_str()).collect();
    let sec_w = REQUIREMENTS
        .iter()
        .map(|r| r.section.len())
        .max()
        .unwrap_or(7);
    let req_w = REQUIREMENTS
        .iter()
        .map(|r| r.text.len())
        .max()
        .unwrap_or(11);
    let mut header = format!(
        "{:<sec_w$} | {:<req_w$} | {:<6}",
        "section", "requirement", "level"
    );
    for n in &names {
        header.push_str(&format!(" | {n:<6}"));
    }
    header.push_str(" | cases");
    println!("{header}");
    println!("{}", "-".repeat(header.len() + 20));
    let mut covered = 0;
    for req in REQUIREMENTS {
        let ran = req.cases.iter().any(|c| {
            names
                .iter()
                .any(|n| results.contains_key(&(c.to_string(), n.to_string())))
        });
        if !req.cases.is_empty() {
            covered += 1;
        }
        let mut line = format!(
            "{:<sec_w$} | {:<req_w$} | {:<6}",
            req.section, req.text, req.level
        );
        for n in &names {
            line.push_str(&format!(" | {:<6}", row_verdict(req, n, results)));
        }
        let cases = if req.cases.is_empty() {
            "not yet covered".to_string()
        } else if !ran {
            format!("{} (filtered out)", req.cases.join(", "))
        } else {
            req.cases.join(", ")
        };
        line.push_str(&format!(" | {cases}"));
        println!("{line}");
    }
    print_notes(&names, results);
    if !notes.is_empty() {
        println!("\nrecorded (error lines, attempts):");
        for n in notes {
            println!("  {n}");
        }
    }
    summary(&names, results, covered)
}

fn print_notes(names: &[&str], results: &Results) {
    let mut keys: Vec<&(String, String)> =
        results.keys().filter(|(c, _)| !c.contains('#')).collect();
    keys.sort_by_key(|(case, rt)| (names.iter().position(|n| n == rt), case.clone()));
    println!("\nnotes:");
    for key in keys {
        match &results[key] {
            Verdict::Fail(why) => println!("  FAIL {} [{}]: {}", key.0, key.1, why),
            Verdict::Skip(why) => println!("  SKIP {} [{}]: {}", key.0, key.1, why),
            Verdict::Pass => {}
        }
    }
}

/// Counts of case verdicts (not sub-checks) for one runtime: (pass, fail, skip).
fn case_counts(results: &Results, runtime: &str) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for ((case, rt), v) in results {
        if rt != runtime || case.contains('#') {
            continue;
        }
        match v {
            Verdict::Pass => counts.0 += 1,
            Verdict::Fail(_) => counts.1 += 1,
            Verdict::Skip(_) => counts.2 += 1,
        }
    }
    counts
}

fn summary(names: &[&str], results: &Results, covered: usize) -> bool {
    let Some(first) = names.first() else {
        return false;
    };
    println!();
    for other in &names[1..] {
        let (p, f, s) = case_counts(results, other);
        println!("({other}: {p} passed, {f} failed, {s} skipped; informational)");
    }
    println!(
        "requirements: {} listed, {} covered by a case, {} not yet covered",
        REQUIREMENTS.len(),
        covered,
        REQUIREMENTS.len() - covered
    );
    let (passed, failed, skipped) = case_counts(results, first);
    println!("conformance: {passed} passed, {failed} failed, {skipped} skipped");
    failed > 0
}
