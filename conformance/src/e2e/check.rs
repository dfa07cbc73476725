//! A check is data: an engine, a name, the engine commands it runs and
//! what each must print or the container's cgroup file must hold. The
//! runner expands the placeholders, runs the steps in order under a
//! deadline each, stops at the first unmet expectation, removes the
//! container and looks for what the runtime left behind.
//!
//! Placeholders in arguments and expected text:
//! `{rt}` the runtime as the engine names it (docker: its registered name;
//! ctr and podman: its path), `{rtpath}` its path, `{name}` the check's
//! container name, `{img}` the engine's busybox image, `{dir}` a host
//! directory of the check, `{runcroot}` ctr's --runc-root for the runtime,
//! `{cgparent}` podman's cgroup parent, `{statedir}` where the runtime keeps
//! its containers' state under the engine, `{hostnet}` the host's network
//! namespace (`net:[N]`), and any `{var}` saved by an earlier step.

use super::engines::{Engine, Engines, Runtime};
use super::proc::Output;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Default deadline of one step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of a whole check's steps (the removal after has its own).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone, Debug)]
pub enum Kind {
    /// An engine command (the engine's prefix is added).
    Engine {
        args: Vec<&'static str>,
        stdin: Option<&'static str>,
        tty: bool,
    },
    /// A host command.
    Host(Vec<&'static str>),
    /// The content of a cgroup file of the container's init, read on the
    /// host: /sys/fs/cgroup/<controller>/<its path>/<file>.
    Cgroup {
        controller: &'static str,
        file: &'static str,
    },
}

#[derive(Clone, Debug)]
pub enum Expect {
    /// stdout, trimmed, is exactly this.
    Out(&'static str),
    /// stdout contains this.
    Has(&'static str),
    /// stdout does not contain this.
    Lacks(&'static str),
    /// stderr contains this.
    ErrHas(&'static str),
    /// The step took less than this.
    Within(Duration),
    /// The step took at least this.
    AtLeast(Duration),
    /// A test on stdout, with what it checks.
    Pred(&'static str, fn(&str) -> bool),
}

#[derive(Clone, Debug)]
pub struct Step {
    pub kind: Kind,
    /// Exit code wanted; None: any.
    pub code: Option<i32>,
    pub expects: Vec<Expect>,
    /// Store stdout (trimmed) as this placeholder.
    pub save: Option<&'static str>,
    /// Retry the step until its expectations hold, for at most this long.
    pub until: Option<Duration>,
    pub timeout: Duration,
}

/// An engine command step.
pub fn e(args: &[&'static str]) -> Step {
    step(Kind::Engine {
        args: args.to_vec(),
        stdin: None,
        tty: false,
    })
}

/// A host command step.
pub fn host(args: &[&'static str]) -> Step {
    step(Kind::Host(args.to_vec()))
}

/// A cgroup file of the container's init.
pub fn cg(controller: &'static str, file: &'static str) -> Step {
    step(Kind::Cgroup { controller, file })
}

fn step(kind: Kind) -> Step {
    Step {
        kind,
        code: Some(0),
        expects: Vec::new(),
        save: None,
        until: None,
        timeout: STEP_TIMEOUT,
    }
}

impl Step {
    pub fn code(mut self, c: i32) -> Step {
        self.code = Some(c);
        self
    }
    pub fn any_code(mut self) -> Step {
        self.code = None;
        self
    }
    pub fn out(mut self, s: &'static str) -> Step {
        self.expects.push(Expect::Out(s));
        self
    }
    pub fn has(mut self, s: &'static str) -> Step {
        self.expects.push(Expect::Has(s));
        self
    }
    pub fn lacks(mut self, s: &'static str) -> Step {
        self.expects.push(Expect::Lacks(s));
        self
    }
    pub fn err_has(mut self, s: &'static str) -> Step {
        self.expects.push(Expect::ErrHas(s));
        self
    }
    pub fn within(mut self, secs: f64) -> Step {
        self.expects
            .push(Expect::Within(Duration::from_secs_f64(secs)));
        self
    }
    pub fn at_least(mut self, secs: f64) -> Step {
        self.expects
            .push(Expect::AtLeast(Duration::from_secs_f64(secs)));
        self
    }
    pub fn pred(mut self, what: &'static str, f: fn(&str) -> bool) -> Step {
        self.expects.push(Expect::Pred(what, f));
        self
    }
    pub fn save(mut self, var: &'static str) -> Step {
        self.save = Some(var);
        self
    }
    pub fn until(mut self, secs: u64) -> Step {
        self.until = Some(Duration::from_secs(secs));
        self
    }
    pub fn stdin(mut self, s: &'static str) -> Step {
        if let Kind::Engine { stdin, .. } = &mut self.kind {
            *stdin = Some(s);
        }
        self
    }
    /// Run under `script -qec`: the engine gets a pty as its terminal.
    pub fn tty(mut self) -> Step {
        if let Kind::Engine { tty, .. } = &mut self.kind {
            *tty = true;
        }
        self
    }
}

#[derive(Clone, Debug)]
pub struct Check {
    pub engine: Engine,
    pub name: &'static str,
    pub steps: Vec<Step>,
    /// Runs the runtime's `exec`.
    pub uses_exec: bool,
    /// Runtimes known to fail this check on this host, and why.
    pub known: Vec<(&'static str, &'static str)>,
}

pub fn check(engine: Engine, name: &'static str, steps: Vec<Step>) -> Check {
    Check {
        engine,
        name,
        steps,
        uses_exec: false,
        known: Vec::new(),
    }
}

impl Check {
    pub fn exec(mut self) -> Check {
        self.uses_exec = true;
        self
    }
    pub fn known_failure(mut self, runtime: &'static str, why: &'static str) -> Check {
        self.known.push((runtime, why));
        self
    }
    /// "docker run --rm: output", as the table shows it.
    pub fn title(&self) -> String {
        format!("{} {}", self.engine.label(), self.name)
    }
}

/// What happened to one check with one runtime.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub pass: bool,
    /// Which step failed and why.
    pub reason: String,
    /// The failed step's command and output, and what the runtime and the
    /// engine logged during the check.
    pub details: Vec<String>,
    pub elapsed: Duration,
    /// A step hit its deadline: the engine may be hung.
    pub timed_out: bool,
}

pub struct Ctx<'a> {
    pub engines: &'a Engines,
    pub rt: &'a Runtime,
    pub vars: HashMap<String, String>,
}

impl Ctx<'_> {
    pub fn expand(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            match after.find('}') {
                Some(j) if self.vars.contains_key(&after[..j]) => {
                    out.push_str(&self.vars[&after[..j]]);
                    rest = &after[j + 1..];
                }
                _ => {
                    // Not a placeholder (a Go template's braces): kept.
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Runs one step once.
fn run_step(ctx: &Ctx, check: &Check, s: &Step, timeout: Duration) -> Output {
    match &s.kind {
        Kind::Engine { args, stdin, tty } => {
            let mut argv = ctx.engines.prefix(check.engine, ctx.rt);
            argv.extend(args.iter().map(|a| ctx.expand(a)));
            let input = stdin.map(|i| ctx.expand(i));
            ctx.engines.run(&argv, input.as_deref(), *tty, timeout)
        }
        Kind::Host(args) => {
            let argv: Vec<String> = args.iter().map(|a| ctx.expand(a)).collect();
            ctx.engines.run(&argv, None, false, timeout)
        }
        Kind::Cgroup { controller, file } => {
            let mut o = Output {
                line: format!(
                    "cat /sys/fs/cgroup/{controller}/<cgroup of {}>/{file}",
                    ctx.vars["name"]
                ),
                ..Default::default()
            };
            let start = Instant::now();
            match ctx.engines.pid(check.engine, ctx.rt, &ctx.vars["name"]) {
                Err(e) => o.stderr = format!("{e:#}"),
                Ok(pid) => match cgroup_file(pid, controller, file) {
                    Ok((path, content)) => {
                        o.line = format!("cat {path}");
                        o.code = Some(0);
                        o.stdout = content;
                    }
                    Err(e) => o.stderr = e,
                },
            }
            o.elapsed = start.elapsed();
            o
        }
    }
}

/// (path, content) of a cgroup v1 file of a process.
pub fn cgroup_file(pid: u32, controller: &str, file: &str) -> Result<(String, String), String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
    let rel = cg
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctls, path) = (f.next()?, f.next()?, f.next()?);
            ctls.split(',').any(|c| c == controller).then_some(path)
        })
        .ok_or_else(|| format!("pid {pid} has no {controller} cgroup"))?;
    let path = format!("/sys/fs/cgroup/{controller}{rel}/{file}");
    let content = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok((path, content))
}

/// Why `o` does not meet `s` (None: it does).
fn judge(ctx: &Ctx, s: &Step, o: &Output) -> Option<String> {
    if o.timed_out {
        return Some(format!(
            "timed out after {:.0}s",
            o.elapsed.as_secs_f64().min(s.timeout.as_secs_f64())
        ));
    }
    if let Some(c) = s.code {
        if o.code != Some(c) {
            return Some(format!("wanted exit {c}, got {}", o.status()));
        }
    }
    let out = o.stdout.trim();
    for x in &s.expects {
        let bad = match x {
            Expect::Out(w) => {
                let w = ctx.expand(w);
                (out != w).then(|| format!("stdout {out:?}, wanted {w:?}"))
            }
            Expect::Has(w) => {
                let w = ctx.expand(w);
                (!o.stdout.contains(&w)).then(|| format!("stdout lacks {w:?}"))
            }
            Expect::Lacks(w) => {
                let w = ctx.expand(w);
                o.stdout.contains(&w).then(|| format!("stdout has {w:?}"))
            }
            Expect::ErrHas(w) => {
                let w = ctx.expand(w);
                (!o.stderr.contains(&w)).then(|| format!("stderr lacks {w:?}"))
            }
            Expect::Within(d) => (o.elapsed >= *d).then(|| {
                format!(
                    "took {:.1}s, wanted under {:.1}s",
                    o.elapsed.as_secs_f64(),
                    d.as_secs_f64()
                )
            }),
            Expect::AtLeast(d) => (o.elapsed < *d).then(|| {
                format!(
                    "took {:.1}s, wanted at least {:.1}s",
                    o.elapsed.as_secs_f64(),
                    d.as_secs_f64()
                )
            }),
            Expect::Pred(what, f) => (!f(out)).then(|| format!("stdout {out:?}: not {what}")),
        };
        if bad.is_some() {
            return bad;
        }
    }
    None
}

fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    format!("...{}", &s[cut..])
}

/// Runs a check with a runtime: steps, then removal and the leftover probe.
pub fn run(
    engines: &Engines,
    check: &Check,
    rt: &Runtime,
    name: String,
    dir: String,
    fixed: &HashMap<String, String>,
) -> Outcome {
    let start = Instant::now();
    let mut vars = fixed.clone();
    vars.insert(
        "rt".into(),
        match check.engine {
            Engine::Docker => rt.name.clone(),
            _ => rt.path.display().to_string(),
        },
    );
    vars.insert("rtpath".into(), rt.path.display().to_string());
    vars.insert("name".into(), name.clone());
    vars.insert("dir".into(), dir.clone());
    vars.insert(
        "statedir".into(),
        engines.state_dir(check.engine, rt).display().to_string(),
    );
    vars.insert(
        "runcroot".into(),
        engines.ctr_runc_root(rt).display().to_string(),
    );
    let _ = std::fs::create_dir_all(&dir);
    let mut ctx = Ctx { engines, rt, vars };
    // What was there before (a leftover of an earlier failure) is not this
    // check's.
    let before = engines.leftovers(check.engine, rt);
    engines.logjson.reset();
    let marks = engines.log_marks();
    let mut failure: Option<(String, Vec<String>)> = None;
    let check_deadline = start + CHECK_TIMEOUT;
    let mut timed_out = false;
    for (i, s) in check.steps.iter().enumerate() {
        let deadline = s.until.map(|u| Instant::now() + u);
        let (o, bad) = loop {
            let left = check_deadline.saturating_duration_since(Instant::now());
            let o = run_step(&ctx, check, s, s.timeout.min(left));
            let bad = judge(&ctx, s, &o);
            match (bad, deadline) {
                (Some(_), Some(d)) if Instant::now() < d => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                (bad, _) => break (o, bad),
            }
        };
        if let Some(why) = bad {
            timed_out = o.timed_out;
            let mut d = vec![
                format!("step {}: {}", i + 1, o.line),
                format!("  {} in {:.2}s", o.status(), o.elapsed.as_secs_f64()),
            ];
            if !o.stdout.trim().is_empty() {
                d.push(format!("  stdout: {}", excerpt(&o.stdout, 600)));
            }
            if !o.stderr.trim().is_empty() {
                d.push(format!("  stderr: {}", excerpt(&o.stderr, 600)));
            }
            failure = Some((format!("step {}: {why}", i + 1), d));
            break;
        }
        if let Some(var) = s.save {
            ctx.vars.insert(var.into(), o.stdout.trim().to_string());
        }
    }
    // What the runtime and the engine logged, before the removal below
    // deletes the bundles.
    let runtime_log = engines.logjson.last_errors();
    let engine_log = engines.log_since(&marks, 4);
    engines.remove(check.engine, rt, &name);
    let _ = std::fs::remove_dir_all(&dir);
    // The runtime deletes the container's cgroups and state when the engine
    // deletes it; give a dying process a moment.
    let new = |all: Vec<String>| -> Vec<String> {
        all.into_iter().filter(|l| !before.contains(l)).collect()
    };
    let mut left = new(engines.leftovers(check.engine, rt));
    let wait_until = Instant::now() + Duration::from_secs(3);
    while !left.is_empty() && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(100));
        left = new(engines.leftovers(check.engine, rt));
    }
    if failure.is_none() && !left.is_empty() {
        failure = Some((
            format!("left behind after removal: {}", left.join(", ")),
            Vec::new(),
        ));
    }
    match failure {
        None => Outcome {
            pass: true,
            reason: String::new(),
            details: Vec::new(),
            elapsed: start.elapsed(),
            timed_out: false,
        },
        Some((reason, mut details)) => {
            for l in runtime_log {
                details.push(format!("  runtime: {}", excerpt(&l, 400)));
            }
            for l in engine_log {
                details.push(format!("  engine: {}", excerpt(&l, 400)));
            }
            if !left.is_empty() {
                details.push(format!("  left behind: {}", left.join(", ")));
                // Leave nothing for the next check to trip over.
                for l in &left {
                    if let Some(p) = l.strip_prefix("cgroup ") {
                        for d in super::ns::subdirs_deepest_first(std::path::Path::new(p)) {
                            let _ = std::fs::remove_dir(d);
                        }
                        let _ = std::fs::remove_dir(p);
                    }
                }
            }
            Outcome {
                pass: false,
                reason,
                details,
                elapsed: start.elapsed(),
                timed_out,
            }
        }
    }
}
