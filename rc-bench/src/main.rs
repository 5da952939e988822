//! `rc-bench`: how fast rc is next to what it replaces, measured in one run.
//!
//! Each row compares an rc scenario with its baseline (the raw `redis` crate
//! doing the same work by hand, a serial variant, or a peer crate) against
//! `redis-server`s the benchmark starts itself on free ports of 127.0.0.1.
//! Both sides run interleaved (warm-up, then A B A B ...) and the table shows
//! the median of the round means, the p99 of single operations where they are
//! timed, the ratio, the row's goal and whether it is met.
//!
//! ```text
//! cargo xtask bench [--quick] [--filter SUBSTR]... [--section TITLE] [--no-write]
//! cargo xtask bench --soak [--soak-secs N] [--no-write]
//! ```
//!
//! A run without `--filter` rewrites `BENCHMARKS.md` at the workspace root
//! (unless `--no-write`), keeping its "Soak" section. A filtered run with
//! `--section` rewrites only the section of that title. The exit status is
//! non-zero only when a row could not run; a missed goal is reported in the
//! table, not as a failure.
//!
//! `--soak` runs the fault checker (see [`soak`]) and rewrites only the
//! "Soak" section; it fails when a read returned a wrong or stale value, a
//! worker panicked, or the process's memory grew.

// The fault checker, shared with `tests/fault_checker.rs`.
#[allow(dead_code)]
#[path = "../../tests/checker/mod.rs"]
mod checker;
mod harness;
mod report;
mod rows;
mod soak;

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use report::{Line, Machine};
use rows::{Ctx, Row};

const USAGE: &str = "usage: rc-bench [--quick] [--filter SUBSTR]... [--section TITLE] [--no-write]
       rc-bench --soak [--soak-secs N] [--no-write]

  --quick          a tenth of the operations per round (under 2 minutes)
  --filter SUBSTR  run only rows whose name contains SUBSTR (repeatable); does not
                   rewrite BENCHMARKS.md
  --section TITLE  with --filter: write the run as the section `## TITLE` of
                   BENCHMARKS.md, leaving the rest of the file as it is
  --no-write       do not write BENCHMARKS.md
  --list           list the rows and exit
  --soak           instead of the rows: the fault checker (readers and writers while
                   servers are paused, killed, restarted, slowed) on a single server
                   and a 3-host cluster; rewrites the Soak section
  --soak-secs N    length of the soak (default 600); RC_CHECKER_SEED=n replays one
";

/// The command line, parsed.
#[derive(Debug, Default)]
struct Args {
    quick: bool,
    filters: Vec<String>,
    section: Option<String>,
    write: bool,
    list: bool,
    soak: bool,
    soak_secs: u64,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        write: true,
        soak_secs: soak::DEFAULT_SECS,
        ..Args::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--no-write" => out.write = false,
            "--list" => out.list = true,
            "--soak" => out.soak = true,
            "--filter" => out
                .filters
                .push(it.next().ok_or("--filter needs a value")?.clone()),
            "--section" => out.section = Some(it.next().ok_or("--section needs a title")?.clone()),
            "--soak-secs" => {
                let n = it.next().ok_or("--soak-secs needs a value")?;
                out.soak_secs = n.parse().ok().filter(|&n| n > 0).ok_or(format!(
                    "--soak-secs: not a positive number of seconds: {n:?}"
                ))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => match other.strip_prefix("--filter=") {
                Some(f) => out.filters.push(f.to_owned()),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    if out.section.is_some() && out.filters.is_empty() {
        return Err("--section needs --filter (a full run rewrites the whole file)".into());
    }
    if out.soak && (out.quick || out.list || !out.filters.is_empty() || out.section.is_some()) {
        return Err("--soak takes only --soak-secs and --no-write".into());
    }
    Ok(out)
}

/// Runs one row, turning a panic (a server that would not start, a failed
/// call) into the row's error.
fn run_row<'a>(row: &'a Row, ctx: &Ctx) -> Line<'a> {
    let start = Instant::now();
    eprintln!("rc-bench: {} ...", row.name);
    let result = panic::catch_unwind(AssertUnwindSafe(|| (row.run)(ctx))).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".to_owned())
    });
    eprintln!(
        "rc-bench: {} done in {:.1} s",
        row.name,
        start.elapsed().as_secs_f64()
    );
    Line { row, result }
}

/// The command to show in `BENCHMARKS.md`: `cargo xtask bench` says how it
/// was called through `RC_BENCH_COMMAND` (its arguments joined by spaces;
/// they are quoted again here when one holds a space).
fn command(args: &[String]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(char::is_whitespace) {
                format!("\"{a}\"")
            } else {
                a.clone()
            }
        })
        .collect();
    let (plain, quoted) = (args.join(" "), quoted.join(" "));
    match std::env::var("RC_BENCH_COMMAND") {
        Ok(c) => match c.strip_suffix(&plain) {
            Some(prefix) if !plain.is_empty() => format!("{prefix}{quoted}"),
            _ => c,
        },
        Err(_) => format!("cargo run --release -p rc-bench -- {quoted}")
            .trim_end()
            .to_owned(),
    }
}

/// `BENCHMARKS.md` at the workspace root.
fn benchmarks_md() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md")
}

/// Writes `md` to `BENCHMARKS.md`.
fn write_md(md: &str) -> Result<(), ExitCode> {
    let path = benchmarks_md();
    match std::fs::write(&path, md) {
        Ok(()) => {
            println!("wrote BENCHMARKS.md");
            Ok(())
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            Err(ExitCode::FAILURE)
        }
    }
}

/// `BENCHMARKS.md` as it is now (empty when there is none).
fn current_md() -> String {
    std::fs::read_to_string(benchmarks_md()).unwrap_or_default()
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    if args.soak {
        let (section, passed) = soak::run(args.soak_secs, &command(&argv));
        println!("\n{section}");
        if args.write {
            let md = report::put_section(&current_md(), soak::TITLE, &section);
            if let Err(code) = write_md(&md) {
                return code;
            }
        }
        if !passed {
            eprintln!("soak failed: see the result above");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    let all = rows::all();
    if args.list {
        for r in &all {
            println!("{:<28} {}", r.name, r.goal.show());
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<&Row> = all
        .iter()
        .filter(|r| {
            args.filters.is_empty() || args.filters.iter().any(|f| r.name.contains(f.as_str()))
        })
        .collect();
    if chosen.is_empty() {
        eprintln!("no row matches {:?}; `--list` shows them", args.filters);
        return ExitCode::FAILURE;
    }
    let ctx = Ctx { quick: args.quick };
    let load_before = report::load_average();
    let start = Instant::now();
    let lines: Vec<Line<'_>> = chosen.into_iter().map(|r| run_row(r, &ctx)).collect();
    let elapsed = start.elapsed().as_secs_f64();

    println!("\n{}", report::table(&lines));
    for l in &lines {
        if let Ok(rows::Outcome { note: Some(n), .. }) = &l.result {
            println!("note on {}: {n}", l.row.name);
        }
    }
    for m in report::missed(&lines) {
        println!("goal not met: {m}");
    }
    println!("({} rows in {elapsed:.0} s)", lines.len());

    let run = if args.quick {
        "quick: 15 interleaved rounds per side, a tenth of the full run's operations per round"
    } else {
        "full: 15 interleaved rounds per side"
    };
    let run = format!("{run}; {elapsed:.0} s in all");
    let written = match (&args.section, args.filters.is_empty()) {
        _ if !args.write => Ok(()),
        (None, true) => {
            let mut md = report::markdown(
                &lines,
                &Machine::here(),
                &command(&argv),
                &run,
                &load_before,
            );
            if let Some(s) = report::section(&current_md(), soak::TITLE) {
                md = report::put_section(&md, soak::TITLE, s);
            }
            write_md(&md)
        }
        (Some(title), _) => {
            let section = report::section_markdown(
                title,
                &lines,
                &Machine::here(),
                &command(&argv),
                &run,
                &load_before,
            );
            write_md(&report::put_section(&current_md(), title, &section))
        }
        (None, false) => Ok(()),
    };
    if let Err(code) = written {
        return code;
    }
    if lines.iter().any(|l| l.result.is_err()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Args, String> {
        parse(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_flags() {
        let a = args(&[
            "--quick",
            "--filter",
            "get",
            "--filter=cluster",
            "--no-write",
        ])
        .unwrap();
        assert!(a.quick && !a.write);
        assert_eq!(a.filters, ["get", "cluster"]);
        assert!(args(&["--filter"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        let a = args(&["--filter", "down", "--section", "Redis down"]).unwrap();
        assert_eq!(a.section.as_deref(), Some("Redis down"));
        assert!(args(&["--section", "Redis down"]).is_err());
    }

    #[test]
    fn parses_soak() {
        let a = args(&["--soak"]).unwrap();
        assert!(a.soak && a.write);
        assert_eq!(a.soak_secs, soak::DEFAULT_SECS);
        let a = args(&["--soak", "--soak-secs", "60", "--no-write"]).unwrap();
        assert!(a.soak && !a.write);
        assert_eq!(a.soak_secs, 60);
        assert!(args(&["--soak", "--soak-secs", "0"]).is_err());
        assert!(args(&["--soak", "--soak-secs", "x"]).is_err());
        assert!(args(&["--soak", "--filter", "get"]).is_err());
    }

    #[test]
    fn row_names_are_unique() {
        let all = rows::all();
        let mut names: Vec<_> = all.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}
