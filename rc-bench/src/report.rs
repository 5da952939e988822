//! The results table (terminal and `BENCHMARKS.md`) and the machine it ran on.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::rows::{Outcome, Row};

/// A row and what running it gave (`Err`: the panic message).
pub struct Line<'a> {
    /// The row.
    pub row: &'a Row,
    /// Its numbers, or why it failed.
    pub result: Result<Outcome, String>,
}

impl Line<'_> {
    /// `Some(met)`; `None` for a row without a goal; a failed row is not met.
    fn met(&self) -> Option<bool> {
        match &self.result {
            Ok(o) => self.row.goal.met(self.row.goal.ratio(&o.sides)),
            Err(_) => Some(false),
        }
    }

    fn cells(&self) -> [String; 6] {
        let goal = self.row.goal;
        let name = format!("`{}`", self.row.name);
        match &self.result {
            Ok(o) => {
                let shown = goal.show_sides(&o.sides);
                let met = match goal.met(goal.ratio(&o.sides)) {
                    Some(true) => "yes",
                    Some(false) => "**NO**",
                    None => "—",
                };
                [
                    name,
                    o.unit.show(&o.sides.a),
                    o.unit.show(&o.sides.b),
                    shown,
                    goal.show(),
                    met.into(),
                ]
            }
            Err(e) => {
                let e = e.replace('|', "/").replace('\n', " ");
                [
                    name,
                    format!("failed: {e}"),
                    "—".into(),
                    "—".into(),
                    goal.show(),
                    "**NO** (failed)".into(),
                ]
            }
        }
    }
}

/// The table as Markdown, columns padded so it also reads in a terminal.
pub fn table(lines: &[Line<'_>]) -> String {
    let header = [
        "scenario",
        "rc median",
        "baseline median",
        "ratio",
        "goal",
        "met?",
    ]
    .map(String::from);
    let body: Vec<[String; 6]> = lines.iter().map(Line::cells).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for cells in &body {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let row = |cells: &[String; 6]| {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(widths) {
            let pad = w - c.chars().count();
            let _ = write!(s, " {c}{} |", " ".repeat(pad));
        }
        s + "\n"
    };
    let mut out = row(&header);
    out += &row(&widths.map(|w| "-".repeat(w)));
    for cells in &body {
        out += &row(cells);
    }
    out
}

/// The rows whose goal is not met, as `name (ratio vs goal)`.
pub fn missed(lines: &[Line<'_>]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.met() == Some(false))
        .map(|l| {
            let goal = l.row.goal;
            match &l.result {
                Ok(o) => format!(
                    "`{}`: {} (goal {})",
                    l.row.name,
                    goal.show_ratio(goal.ratio(&o.sides)),
                    goal.show()
                ),
                Err(e) => format!("`{}`: failed ({e})", l.row.name),
            }
        })
        .collect()
}

/// Where and when the run happened.
pub struct Machine {
    /// Cores the process may use.
    pub cores: usize,
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// `redis-server --version`.
    pub redis: String,
    /// UTC, `YYYY-MM-DD HH:MM`.
    pub date: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute load averages, at the end of the run.
    pub load: String,
}

/// `/proc/loadavg`'s first three fields (1, 5 and 15 minutes).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

impl Machine {
    /// Looks at this machine.
    pub fn here() -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let redis = Command::new("redis-server")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Machine {
            cores,
            cpu,
            redis,
            date: utc(secs),
            load: load_average(),
        }
    }
}

/// `secs` since the epoch as `YYYY-MM-DD HH:MM UTC`.
fn utc(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    // RFC 3339 is `YYYY-MM-DDTHH:MM:SSZ`; keep the minutes.
    let rfc = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} {} UTC", &rfc[..10], &rfc[11..16])
}

/// The run's facts, as a list: command, run, date, machine, load, redis.
pub fn facts(md: &mut String, machine: &Machine, command: &str, run: &str, load_before: &str) {
    let _ = writeln!(md, "- command: `{command}`");
    let _ = writeln!(md, "- run: {run}");
    let _ = writeln!(md, "- date: {}", machine.date);
    let _ = writeln!(md, "- machine: {} cores, {}", machine.cores, machine.cpu);
    let _ = writeln!(
        md,
        "- load average (1, 5, 15 min): {load_before} before the run, {} after it",
        machine.load
    );
    let _ = writeln!(md, "- redis: `{}`\n", machine.redis);
}

/// The table and the goals it misses.
fn results(md: &mut String, lines: &[Line<'_>]) {
    *md += &table(lines);
    let missed = missed(lines);
    if missed.is_empty() {
        *md += "\nEvery goal is met.\n";
    } else {
        *md += "\nGoals not met:\n\n";
        for m in &missed {
            let _ = writeln!(md, "- {m}");
        }
    }
}

/// One item per row: what it measures, and its note.
fn measures(md: &mut String, lines: &[Line<'_>]) {
    for l in lines {
        let _ = write!(md, "- `{}`: {}.", l.row.name, l.row.measures);
        if let Ok(Outcome { note: Some(n), .. }) = &l.result {
            let _ = write!(md, " Note: {n}.");
        }
        *md += "\n";
    }
}

/// A section `## {title}` of `BENCHMARKS.md` for rows run alone (`--filter
/// .. --section`), outside the run of the main table; see [`put_section`].
pub fn section_markdown(
    title: &str,
    lines: &[Line<'_>],
    machine: &Machine,
    command: &str,
    run: &str,
    load_before: &str,
) -> String {
    let mut md = format!("## {title}\n\n");
    md += "Rows run alone, not in the run of the main table above (a full run puts them in its \
           table and drops this section); read as the main table.\n\n";
    facts(&mut md, machine, command, run, load_before);
    results(&mut md, lines);
    md += "\nWhat each row measures:\n\n";
    measures(&mut md, lines);
    md
}

/// Where the section headed `## {title}` lies in `md`: from its heading to
/// the next `## ` heading or the end.
fn section_span(md: &str, title: &str) -> Option<(usize, usize)> {
    let heading = format!("## {title}");
    let mut offset = 0;
    let mut start = None;
    for line in md.split_inclusive('\n') {
        let text = line.trim_end();
        match start {
            None if text == heading => start = Some(offset),
            Some(s) if text.starts_with("## ") => return Some((s, offset)),
            _ => {}
        }
        offset += line.len();
    }
    start.map(|s| (s, md.len()))
}

/// The section of `md` headed `## {title}`, heading included.
pub fn section<'a>(md: &'a str, title: &str) -> Option<&'a str> {
    section_span(md, title).map(|(s, e)| &md[s..e])
}

/// `md` with its section `## {title}` replaced by `section` (which starts
/// with that heading), or with `section` added at the end; the rest of `md`
/// is kept as it is.
pub fn put_section(md: &str, title: &str, section: &str) -> String {
    let section = section.trim_end();
    match section_span(md, title) {
        Some((s, e)) if e < md.len() => format!("{}{section}\n\n{}", &md[..s], &md[e..]),
        Some((s, _)) => format!("{}{section}\n", &md[..s]),
        None if md.trim_end().is_empty() => format!("{section}\n"),
        None => format!("{}\n\n{section}\n", md.trim_end()),
    }
}

/// The whole `BENCHMARKS.md`.
pub fn markdown(
    lines: &[Line<'_>],
    machine: &Machine,
    command: &str,
    run: &str,
    load_before: &str,
) -> String {
    let mut md = String::new();
    md += "# Benchmarks\n\n";
    md += "Written by `rc-bench` (`cargo xtask bench`); rerun it to refresh this file rather than editing it.\n\n";
    facts(&mut md, machine, command, run, load_before);
    results(&mut md, lines);
    md += "\n## What each row measures\n\n";
    measures(&mut md, lines);
    md += "\n## Method\n\n";
    md += "Each row starts the `redis-server`s it needs on free ports of 127.0.0.1 (no \
           persistence) and fills them before measuring; the decorated-function and peer rows \
           share one server, because their functions bind their caches once, in statics. rc and \
           its baseline run interleaved in one process: a warm-up of each, then rounds A B A B \
           ..., so both see the same machine state. Async rows run in tasks of a tokio runtime \
           with one worker thread.\n\n";
    md += "A latency cell is the median over the rounds of each round's mean time per operation; \
           `p99` is the 99th percentile of all single operations of all rounds. A throughput cell \
           is a round's wall time divided by its operations. A ratio is the median over the \
           rounds of rc's round mean over that of the baseline round run right after it, so load \
           that changes between rounds cancels out of each pair; when it differs by more than 5% \
           from the ratio of the two medians, that one is shown too, in parentheses. `rc/base` is \
           rc's time over the baseline's (lower is better); `× faster` is the baseline's time over \
           rc's; `of base` is rc's throughput as a fraction of the baseline's. A row with a `p99` goal \
           shows `p50` and `p99` of all single operations, and in the ratio column rc's overhead: \
           rc's percentile minus the baseline's.\n\n";
    md += "Compare ratios, not absolute times, across runs: on a virtual machine a loopback round \
           trip costs about three times more when the CPUs are idle (waking a halted virtual CPU) \
           than when other work keeps them busy, and other processes on the machine come and go.\n";
    md
}

#[cfg(test)]
mod tests {
    use super::{put_section, section, utc};

    #[test]
    fn sections_are_replaced_or_added_and_the_rest_kept() {
        let md = "# B\n\n| t |\n\n## Method\n\nm\n";
        let one = put_section(md, "Soak", "## Soak\n\nfirst\n");
        assert_eq!(one, "# B\n\n| t |\n\n## Method\n\nm\n\n## Soak\n\nfirst\n");
        let two = put_section(&one, "Redis down", "## Redis down\n\nd\n");
        let three = put_section(&two, "Soak", "## Soak\n\nsecond\n\n");
        assert_eq!(
            three,
            "# B\n\n| t |\n\n## Method\n\nm\n\n## Soak\n\nsecond\n\n## Redis down\n\nd\n"
        );
        assert_eq!(section(&three, "Soak"), Some("## Soak\n\nsecond\n\n"));
        assert_eq!(section(&three, "Redis down"), Some("## Redis down\n\nd\n"));
        assert_eq!(section(&three, "Redis"), None);
        assert_eq!(put_section("", "S", "## S\n"), "## S\n");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400 + 3_660), "2000-02-29 01:01 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
