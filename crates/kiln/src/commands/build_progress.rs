//! How `kiln build` shows its progress on stderr: the [`Reporter`]s the
//! builder's events go to, one per `--progress` mode. It owns only the
//! rendering; the closing table and summary stay in [`super::build`].
//!
//! - plain ([`PlainProgress`]): one line per event, BuildKit's `#N` style.
//! - rawjson ([`RawJsonProgress`]): BuildKit-shaped JSON lines.
//! - tty ([`TtyProgress`]): BuildKit's live view, redrawn in place: a
//!   `[+] Building 3.2s (5/7)` header (the total is the graph's, from
//!   [`Event::Plan`]), one line per step with its time (ticking while it
//!   runs; `CACHED`, `ERROR`), under a running step its last
//!   [`TAIL_LINES`] lines of output (dimmed; gone when it succeeds), under
//!   a step the `--explain-cache` reasons (kept). Lines are cut to the
//!   terminal's width; when the steps do not fit its height the finished
//!   ones at the top leave the live view first. indicatif redraws it every
//!   [`TICK`]; the events only change the state. When the build ends the
//!   whole final frame is printed once more, in full, and stays; then the
//!   complete output of each failed step, between `------` rules as
//!   BuildKit prints it (the error with the Dockerfile line follows, from
//!   `main`), since the live view only ever showed its last lines.
//!
//! Events come from the scheduler's threads at once: each reporter keeps
//! its lines whole (one `eprintln!` per line, or a mutex).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use kiln_build::{Event, Reporter, Status};

/// How often the live view is redrawn (BuildKit's is 100 ms too).
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// Output lines shown under a running step (BuildKit shows 6).
pub(crate) const TAIL_LINES: usize = 6;
/// Output kept per step for the failure report: its newest bytes (BuildKit
/// clips a step's log at 2 MiB by default).
const KEEP_BYTES: usize = 4 << 20;

/// The reporter of one build.
#[derive(Debug)]
pub(crate) enum BuildProgress {
    /// `-q`, `--progress quiet`.
    Quiet,
    /// `plain`, and `auto` without a terminal.
    Plain(PlainProgress),
    /// `rawjson`.
    RawJson(RawJsonProgress),
    /// `tty`, and `auto` on a terminal.
    Tty(TtyProgress),
}

impl BuildProgress {
    /// Stop the live view (its final frame stays, followed by the output of
    /// failed steps); nothing for the others.
    pub(crate) fn finish(&self) {
        if let BuildProgress::Tty(t) = self {
            t.finish();
        }
    }
}

impl Reporter for BuildProgress {
    fn event(&self, event: &Event<'_>) {
        match self {
            BuildProgress::Quiet => {}
            BuildProgress::Plain(p) => p.event(event),
            BuildProgress::RawJson(r) => r.event(event),
            BuildProgress::Tty(t) => t.event(event),
        }
    }
}

/// Plain progress on stderr, one line per event: `#N [stage 1/2] COPY …`,
/// then `#N CACHED`, `#N DONE 0.1s` or `#N ERROR`.
#[derive(Debug)]
pub(crate) struct PlainProgress;

impl Reporter for PlainProgress {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::Plan { .. } => {}
            Event::Vertex { id, name, status } => {
                let n = id + 1;
                match status {
                    Status::Started => eprintln!("#{n} {name}"),
                    Status::Cached => eprintln!("#{n} {name}\n#{n} CACHED"),
                    Status::Done(d) => eprintln!("#{n} DONE {:.1}s", d.as_secs_f64()),
                    Status::Failed => eprintln!("#{n} ERROR"),
                }
            }
            Event::Explain { id, reasons } => {
                for r in reasons.iter() {
                    eprintln!("#{} MISS {r}", id + 1);
                }
            }
            Event::Output { id, data } => {
                for line in String::from_utf8_lossy(data).lines() {
                    eprintln!("#{} {line}", id + 1);
                }
            }
        }
    }
}

/// `--progress rawjson`: one JSON object per line on stderr, in the shape
/// of BuildKit's (`{"vertexes":[…]}`, `{"logs":[…]}`), for tools that read
/// a build's progress. A vertex's `digest` is kiln's own (a hash of its
/// number and name), the same in its logs.
#[derive(Debug, Default)]
pub(crate) struct RawJsonProgress {
    /// Vertex number → (digest, start).
    vertices: Mutex<BTreeMap<usize, (String, std::time::SystemTime)>>,
}

impl RawJsonProgress {
    /// The vertex's digest and start, recorded at its first event.
    fn vertex(
        &self,
        id: usize,
        name: &str,
        now: std::time::SystemTime,
    ) -> (String, std::time::SystemTime) {
        self.vertices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert_with(|| {
                use std::io::Write as _;
                let mut h = kiln_fs::hash::HashingWriter::new(std::io::sink());
                let _ = write!(h, "{id}\0{name}");
                (h.finish().0.to_string(), now)
            })
            .clone()
    }

    /// A `logs` line of the vertex's `stream` (1 output, 2 kiln's notes).
    fn log(
        &self,
        id: usize,
        stream: u8,
        data: &[u8],
        now: std::time::SystemTime,
    ) -> serde_json::Value {
        use base64::Engine as _;
        let (digest, _) = self.vertex(id, "", now);
        serde_json::json!({"logs": [{
            "vertex": digest,
            "stream": stream,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "timestamp": kiln_runtime::monitor::rfc3339_nanos(now),
        }]})
    }
}

impl Reporter for RawJsonProgress {
    fn event(&self, event: &Event<'_>) {
        use kiln_runtime::monitor::rfc3339_nanos;
        let now = std::time::SystemTime::now();
        let line = match event {
            // BuildKit's stream has no such line: the vertexes say it all.
            Event::Plan { .. } => return,
            Event::Vertex { id, name, status } => {
                let (digest, started) = self.vertex(*id, name, now);
                let mut v = serde_json::json!({"digest": digest, "name": name});
                v["started"] = match status {
                    Status::Done(d) => rfc3339_nanos(now.checked_sub(*d).unwrap_or(started)),
                    _ => rfc3339_nanos(started),
                }
                .into();
                if *status != Status::Started {
                    v["completed"] = rfc3339_nanos(now).into();
                }
                match status {
                    Status::Cached => v["cached"] = true.into(),
                    Status::Failed => v["error"] = "failed".into(),
                    Status::Started | Status::Done(_) => {}
                }
                serde_json::json!({ "vertexes": [v] })
            }
            Event::Output { id, data } => self.log(*id, 1, data, now),
            Event::Explain { id, reasons } => {
                let text: String = reasons.iter().map(|r| format!("MISS {r}\n")).collect();
                self.log(*id, 2, text.as_bytes(), now)
            }
        };
        eprintln!("{line}");
    }
}

/// `--progress tty`: the live view (see the module's doc).
#[derive(Debug)]
pub(crate) struct TtyProgress {
    frame: Arc<Mutex<Frame>>,
    bar: ProgressBar,
}

impl TtyProgress {
    /// Start drawing on stderr (a terminal: [`super::progress::mode`]).
    pub(crate) fn new() -> TtyProgress {
        let frame = Arc::new(Mutex::new(Frame::new(
            Instant::now(),
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )));
        let shown = Arc::clone(&frame);
        // The whole frame is one multi-line key: indicatif draws it (and
        // erases the previous one) from this closure at every tick. The
        // closure runs under indicatif's lock and takes the frame's, so an
        // event must never call the bar while holding the frame.
        let style = ProgressStyle::with_template("{frame}")
            .expect("a template of one key always parses")
            .with_key(
                "frame",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let (cols, rows) = terminal_size();
                    let f = shown.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = w.write_str(&f.lines(Instant::now(), cols, Some(rows)).join("\n"));
                },
            );
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(style);
        bar.enable_steady_tick(TICK);
        TtyProgress { frame, bar }
    }

    /// Stop redrawing, print the final frame in full and the output of the
    /// failed steps.
    fn finish(&self) {
        let now = Instant::now();
        let text = {
            let mut f = self.frame.lock().unwrap_or_else(PoisonError::into_inner);
            f.ended.get_or_insert(now);
            let (cols, _) = terminal_size();
            let mut lines = f.lines(now, cols, None);
            lines.extend(f.failures());
            lines
        };
        // After the frame's lock is released (see `new`).
        self.bar.finish_and_clear();
        let mut out = String::new();
        for l in text {
            out.push_str(&l);
            out.push('\n');
        }
        eprint!("{out}");
    }
}

impl Reporter for TtyProgress {
    fn event(&self, event: &Event<'_>) {
        self.frame
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .event(event, Instant::now());
    }
}

/// The terminal's columns and rows (stderr's), 80×24 when it does not say.
fn terminal_size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(std::io::stderr()) {
        Ok(w) if w.ws_col > 0 && w.ws_row > 0 => (usize::from(w.ws_col), usize::from(w.ws_row)),
        _ => (80, 24),
    }
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Running,
    Cached,
    Done(Duration),
    Failed(Duration),
}

/// One step of the live view.
#[derive(Debug)]
struct Step {
    id: usize,
    name: String,
    started: Instant,
    state: State,
    /// Its output's complete lines, the newest [`KEEP_BYTES`] of them.
    lines: VecDeque<String>,
    kept: usize,
    /// Lines dropped from the front to keep within [`KEEP_BYTES`].
    dropped: usize,
    /// The last line, not ended yet.
    partial: Vec<u8>,
    /// `--explain-cache` reasons.
    misses: Vec<String>,
}

impl Step {
    fn output(&mut self, data: &[u8]) {
        self.partial.extend_from_slice(data);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            self.keep(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        // A "line" that never ends (a progress bar redrawn with \r).
        if self.partial.len() > KEEP_BYTES {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            self.keep(line);
        }
    }

    fn keep(&mut self, line: String) {
        self.kept += line.len() + 1;
        self.lines.push_back(line);
        while self.kept > KEEP_BYTES && self.lines.len() > 1 {
            if let Some(old) = self.lines.pop_front() {
                self.kept -= old.len() + 1;
                self.dropped += 1;
            }
        }
    }

    /// The last `n` lines of output as a terminal shows them (a line
    /// redrawn with `\r` shows its last state).
    fn tail(&self, n: usize) -> Vec<String> {
        let partial = (!self.partial.is_empty()).then(|| String::from_utf8_lossy(&self.partial));
        let mut out: Vec<String> = self
            .lines
            .iter()
            .map(String::as_str)
            .chain(partial.as_deref())
            .rev()
            .map(|l| {
                let l = l.trim_end_matches('\r');
                clean(l.rsplit('\r').next().unwrap_or(l))
            })
            .take(n)
            .collect();
        out.reverse();
        out
    }
}

/// What the live view shows.
#[derive(Debug)]
struct Frame {
    started: Instant,
    /// The graph's vertices ([`Event::Plan`]).
    total: usize,
    /// In the order they first reported, as BuildKit lists them.
    steps: Vec<Step>,
    /// ANSI colours (not with `NO_COLOR`).
    color: bool,
    /// When the build ended: the header stops and says FINISHED.
    ended: Option<Instant>,
}

impl Frame {
    fn new(started: Instant, color: bool) -> Frame {
        Frame {
            started,
            total: 0,
            steps: Vec::new(),
            color,
            ended: None,
        }
    }

    fn step(&mut self, id: usize, name: &str, now: Instant) -> &mut Step {
        let i = match self.steps.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.steps.push(Step {
                    id,
                    name: clean(name),
                    started: now,
                    state: State::Running,
                    lines: VecDeque::new(),
                    kept: 0,
                    dropped: 0,
                    partial: Vec::new(),
                    misses: Vec::new(),
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[i]
    }

    fn event(&mut self, event: &Event<'_>, now: Instant) {
        match event {
            Event::Plan { total } => self.total = *total,
            Event::Vertex { id, name, status } => {
                let step = self.step(*id, name, now);
                step.state = match status {
                    Status::Started => {
                        step.started = now;
                        State::Running
                    }
                    Status::Cached => State::Cached,
                    Status::Done(d) => State::Done(*d),
                    Status::Failed => State::Failed(now.saturating_duration_since(step.started)),
                };
            }
            // Output and reasons follow their step's first event.
            Event::Output { id, data } => {
                if let Some(s) = self.steps.iter_mut().find(|s| s.id == *id) {
                    s.output(data);
                }
            }
            Event::Explain { id, reasons } => {
                if let Some(s) = self.steps.iter_mut().find(|s| s.id == *id) {
                    s.misses.extend(reasons.iter().map(|r| clean(r)));
                }
            }
        }
    }

    fn paint(&self, code: &str, text: String) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    }

    /// The frame at `now` on a terminal of `cols` columns and (live view)
    /// `rows` rows.
    fn lines(&self, now: Instant, cols: usize, rows: Option<usize>) -> Vec<String> {
        // One column short of the edge: a line that fills it would leave
        // the cursor waiting to wrap on some terminals.
        let width = cols.saturating_sub(1).max(20);
        let end = self.ended.unwrap_or(now);
        let done = self
            .steps
            .iter()
            .filter(|s| s.state != State::Running)
            .count();
        let mut header = format!(
            "[+] Building {:.1}s ({done}/{})",
            end.saturating_duration_since(self.started).as_secs_f64(),
            self.total.max(self.steps.len())
        );
        if self.ended.is_some() {
            header.push_str(" FINISHED");
        }
        let mut groups: Vec<(bool, Vec<String>)> = Vec::new();
        for s in &self.steps {
            let (label, took, color) = match s.state {
                State::Running => ("", now.saturating_duration_since(s.started), "34"),
                State::Cached => ("CACHED ", Duration::ZERO, ""),
                State::Done(d) => ("", d, ""),
                State::Failed(d) => ("ERROR ", d, "31"),
            };
            let time = format!("{:.1}s", took.as_secs_f64());
            let left = cut(&format!(" => {label}{}", s.name), width - time.len() - 1);
            let pad = width - left.chars().count() - time.len();
            let line = format!("{left}{:pad$}{time}", "");
            let mut group = vec![if color.is_empty() {
                line
            } else {
                self.paint(color, line)
            }];
            // Output only while it runs (a failed step's is printed in full
            // at the end); the reasons stay.
            if s.state == State::Running && self.ended.is_none() {
                for l in s.tail(TAIL_LINES) {
                    group.push(self.paint("2", cut(&format!(" => => # {l}"), width)));
                }
            }
            for m in &s.misses {
                group.push(cut(&format!(" => => MISS {m}"), width));
            }
            groups.push((s.state != State::Running, group));
        }
        // Too tall for the terminal (the header and a free last row
        // aside): the finished steps leave, oldest first, then whatever is
        // above the last rows.
        let room = rows.map(|r| r.saturating_sub(2).max(1));
        if let Some(room) = room {
            let mut height: usize = groups.iter().map(|(_, g)| g.len()).sum();
            groups.retain(|(finished, g)| {
                let drop = height > room && *finished;
                if drop {
                    height -= g.len();
                }
                !drop
            });
        }
        let body: Vec<String> = groups.into_iter().flat_map(|(_, g)| g).collect();
        let skip = room.map_or(0, |room| body.len().saturating_sub(room));
        let mut out = vec![header];
        out.extend(body.into_iter().skip(skip));
        out
    }

    /// The complete output of each failed step, as BuildKit prints it
    /// after its progress.
    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in self
            .steps
            .iter()
            .filter(|s| matches!(s.state, State::Failed(_)))
        {
            out.push("------".to_string());
            out.push(format!(" > {}:", s.name));
            if s.dropped > 0 {
                out.push(format!("[{} earlier lines not kept]", s.dropped));
            }
            out.extend(s.lines.iter().map(|l| l.trim_end_matches('\r').to_string()));
            if !s.partial.is_empty() {
                out.push(String::from_utf8_lossy(&s.partial).into_owned());
            }
            out.push("------".to_string());
        }
        out
    }
}

/// `text` as one line of plain characters: escape sequences (colours,
/// cursor moves) dropped, tabs as spaces, other control characters (a
/// newline in a heredoc's step name) as a space, so that a character is a
/// column and the frame's lines stay its lines.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (a title, a link): up to BEL or ST.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => {
                let n = 8 - out.chars().count() % 8;
                out.extend(std::iter::repeat_n(' ', n));
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `width` characters of `text`, a cut one ending in `…`.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(id: usize, name: &str, status: Status) -> Event<'_> {
        Event::Vertex { id, name, status }
    }

    fn frame() -> (Frame, Instant) {
        let t0 = Instant::now();
        let mut f = Frame::new(t0, false);
        f.event(&Event::Plan { total: 4 }, t0);
        f.event(
            &vertex(0, "[stage-0 1/4] FROM busybox", Status::Started),
            t0,
        );
        let t1 = t0 + Duration::from_millis(100);
        f.event(
            &vertex(
                0,
                "[stage-0 1/4] FROM busybox",
                Status::Done(Duration::from_millis(100)),
            ),
            t1,
        );
        f.event(&vertex(1, "[stage-0 2/4] COPY a /a", Status::Cached), t1);
        f.event(&vertex(2, "[stage-0 3/4] RUN make", Status::Started), t1);
        (f, t0)
    }

    #[test]
    fn header_steps_and_times_while_running() {
        let (mut f, t0) = frame();
        let t = t0 + Duration::from_millis(1300);
        let data: Vec<u8> = (1..=8)
            .map(|i| format!("line {i}\n"))
            .collect::<String>()
            .into();
        f.event(&Event::Output { id: 2, data: &data }, t);
        f.event(
            &Event::Output {
                id: 2,
                data: b"50%\r75%",
            },
            t,
        );
        let lines = f.lines(t, 60, Some(40));
        assert_eq!(lines[0], "[+] Building 1.3s (2/4)");
        // Names on the left, times on the right edge (a column short).
        assert_eq!(
            lines[1..4],
            [
                " => [stage-0 1/4] FROM busybox                         0.1s",
                " => CACHED [stage-0 2/4] COPY a /a                     0.0s",
                " => [stage-0 3/4] RUN make                             1.2s",
            ]
        );
        assert_eq!(lines[1].len(), 59);
        // The last six lines of output, the redrawn one as it looks last.
        assert_eq!(
            lines[4..],
            [
                " => => # line 4",
                " => => # line 5",
                " => => # line 6",
                " => => # line 7",
                " => => # line 8",
                " => => # 75%",
            ]
        );
        assert!(lines.iter().all(|l| l.chars().count() < 60), "{lines:#?}");
    }

    #[test]
    fn finished_frame_keeps_reasons_and_drops_output() {
        let (mut f, t0) = frame();
        let t = t0 + Duration::from_secs(2);
        f.event(
            &Event::Output {
                id: 2,
                data: b"built\n",
            },
            t,
        );
        f.event(
            &vertex(
                2,
                "[stage-0 3/4] RUN make",
                Status::Done(Duration::from_millis(1900)),
            ),
            t,
        );
        f.event(
            &Event::Explain {
                id: 2,
                reasons: &["a: content changed".to_string()],
            },
            t,
        );
        f.ended = Some(t);
        let lines = f.lines(t + Duration::from_secs(5), 50, None);
        assert_eq!(lines[0], "[+] Building 2.0s (3/4) FINISHED");
        assert_eq!(
            lines[3],
            " => [stage-0 3/4] RUN make                   1.9s"
        );
        assert_eq!(lines[4], " => => MISS a: content changed");
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(f.failures().is_empty());
    }

    #[test]
    fn failed_step_is_an_error_with_its_whole_output_after_the_frame() {
        let (mut f, t0) = frame();
        let t = t0 + Duration::from_secs(1);
        for i in 0..20 {
            f.event(
                &Event::Output {
                    id: 2,
                    data: format!("out {i}\n").as_bytes(),
                },
                t,
            );
        }
        f.event(&vertex(2, "[stage-0 3/4] RUN make", Status::Failed), t);
        f.ended = Some(t);
        let lines = f.lines(t, 80, None);
        assert!(
            lines[3].starts_with(" => ERROR [stage-0 3/4] RUN make ") && lines[3].ends_with("0.9s"),
            "{lines:#?}"
        );
        assert_eq!(lines.len(), 4, "{lines:#?}");
        let failed = f.failures();
        assert_eq!(failed[0], "------");
        assert_eq!(failed[1], " > [stage-0 3/4] RUN make:");
        assert_eq!(failed[2], "out 0");
        assert_eq!(failed[21], "out 19");
        assert_eq!(failed[22], "------");
    }

    #[test]
    fn long_names_are_cut_and_a_short_terminal_drops_finished_steps_first() {
        let t0 = Instant::now();
        let mut f = Frame::new(t0, true);
        let long = format!("[s 1/9] RUN {}", "x".repeat(200));
        f.event(&vertex(0, &long, Status::Started), t0);
        for i in 1..9 {
            f.event(
                &vertex(i, &format!("[s {i}/9] COPY {i} /"), Status::Cached),
                t0,
            );
        }
        let lines = f.lines(t0, 40, Some(6));
        // The header, the running step (blue, cut) and the last cached
        // steps that fit in 6 - 2 rows.
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[1].starts_with("\x1b[34m => [s 1/9] RUN xxx"),
            "{lines:#?}"
        );
        assert!(lines[1].contains('…'));
        assert_eq!(lines[1].chars().count(), 39 + "\x1b[34m\x1b[0m".len());
        assert!(lines[4].starts_with(" => CACHED [s 8/9] COPY 8 /"));
    }

    #[test]
    fn clean_drops_escapes_and_controls() {
        assert_eq!(clean("\x1b[1;31mred\x1b[0m ok"), "red ok");
        assert_eq!(clean("a\tb"), "a       b");
        assert_eq!(clean("\x1b]0;title\x07x\ny"), "x y");
    }

    #[test]
    fn output_keeps_the_newest_bytes() {
        let t0 = Instant::now();
        let mut f = Frame::new(t0, false);
        f.event(&vertex(0, "RUN", Status::Started), t0);
        let line = vec![b'x'; 1 << 20];
        for _ in 0..6 {
            let mut l = line.clone();
            l.push(b'\n');
            f.event(&Event::Output { id: 0, data: &l }, t0);
        }
        let s = &f.steps[0];
        assert!(s.kept <= KEEP_BYTES);
        assert_eq!(s.dropped + s.lines.len(), 6);
        assert!(s.dropped > 0);
        f.event(&vertex(0, "RUN", Status::Failed), t0);
        let failed = f.failures();
        assert!(
            failed[2].contains("earlier lines not kept"),
            "{:?}",
            &failed[2]
        );
    }
}
