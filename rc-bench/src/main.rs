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
//! cargo xtask bench [--quick] [--filter SUBSTR]... [--no-write]
//! ```
//!
//! A run without `--filter` rewrites `BENCHMARKS.md` at the workspace root
//! (unless `--no-write`). The exit status is non-zero only when a row could
//! not run; a missed goal is reported in the table, not as a failure.

mod harness;
mod proxy;
mod report;
mod rows;

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use report::{Line, Machine};
use rows::{Ctx, Row};

const USAGE: &str = "usage: rc-bench [--quick] [--filter SUBSTR]... [--no-write]

  --quick          a tenth of the operations per round (under 2 minutes)
  --filter SUBSTR  run only rows whose name contains SUBSTR (repeatable); does not
                   rewrite BENCHMARKS.md
  --no-write       do not rewrite BENCHMARKS.md
  --list           list the rows and exit
";

/// The command line, parsed.
#[derive(Debug, Default)]
struct Args {
    quick: bool,
    filters: Vec<String>,
    write: bool,
    list: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        write: true,
        ..Args::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--no-write" => out.write = false,
            "--list" => out.list = true,
            "--filter" => out
                .filters
                .push(it.next().ok_or("--filter needs a value")?.clone()),
            "-h" | "--help" => return Err(String::new()),
            other => match other.strip_prefix("--filter=") {
                Some(f) => out.filters.push(f.to_owned()),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
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
/// was called through `RC_BENCH_COMMAND`.
fn command(args: &[String]) -> String {
    std::env::var("RC_BENCH_COMMAND").unwrap_or_else(|_| {
        let mut c = "cargo run --release -p rc-bench --".to_owned();
        for a in args {
            c.push(' ');
            c.push_str(a);
        }
        c
    })
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

    if args.write && args.filters.is_empty() {
        let run = if args.quick {
            "quick: 15 interleaved rounds per side, a tenth of the full run's operations per round"
        } else {
            "full: 15 interleaved rounds per side"
        };
        let md = report::markdown(
            &lines,
            &Machine::here(),
            &command(&argv),
            &format!("{run}; {elapsed:.0} s in all"),
            &load_before,
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
        match std::fs::write(&path, md) {
            Ok(()) => println!("wrote BENCHMARKS.md"),
            Err(e) => {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
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
