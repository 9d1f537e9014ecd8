//! Elastic tabstops as Go's `text/tabwriter` does them, in the variant
//! Docker prints its tables with (`cli/command/formatter/tabwriter`: the
//! same algorithm, but a cell's width is its width on a terminal, so CJK
//! text and emoji count two columns).
//!
//! Input is cells terminated by `\t` (or `\v`, a soft tab) and lines
//! ended by `\n` (or `\f`, which also ends the block). Tab-terminated
//! cells in the same column of consecutive lines form a column block; each
//! block is as wide as its widest cell plus the padding, and never
//! narrower than the minimum width. Text after a line's last tab is not
//! part of any column and is written as it is. A line without any tab
//! ends every block, and the writer emits what it has buffered there.
//!
//! Not supported: the `FilterHTML`, `StripEscape`, `TabIndent` and
//! `Debug` flags, and escaped (`\xff`) segments.
//!
//! See <https://pkg.go.dev/text/tabwriter> and
//! <http://nickgravgaard.com/elastictabstops/>.

use std::io::{self, Write};

/// How a [`TabWriter`] pads columns (`tabwriter.NewWriter`'s arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TabConfig {
    /// The minimal width of a column, padding included.
    pub(crate) min_width: usize,
    /// The width of a tab when `pad_char` is `\t`.
    pub(crate) tab_width: usize,
    /// Added to the widest cell of a column.
    pub(crate) padding: usize,
    /// The fill byte; `\t` pads with tabs to multiples of `tab_width`.
    pub(crate) pad_char: u8,
    /// Right-align cell contents (`tabwriter.AlignRight`).
    pub(crate) align_right: bool,
    /// Drop columns made only of empty `\v`-terminated cells
    /// (`tabwriter.DiscardEmptyColumns`).
    pub(crate) discard_empty_columns: bool,
}

impl TabConfig {
    /// What Docker's tables use: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`
    /// (`cli/command/formatter/formatter.go`).
    pub(crate) const DOCKER: TabConfig = TabConfig {
        min_width: 10,
        tab_width: 1,
        padding: 3,
        pad_char: b' ',
        align_right: false,
        discard_empty_columns: false,
    };
}

#[derive(Debug, Default)]
struct Cell {
    text: Vec<u8>,
    width: usize,
    htab: bool,
}

/// A writer that aligns tab-separated columns before passing text on.
///
/// Text is held until a line without tabs, a `\f`, or [`Write::flush`];
/// call `flush` when done or the tail is lost.
#[derive(Debug)]
pub(crate) struct TabWriter<W: Write> {
    out: W,
    cfg: TabConfig,
    /// Complete lines, then the line being written (always present).
    lines: Vec<Vec<Cell>>,
    /// The cell being written.
    cell: Vec<u8>,
}

impl<W: Write> TabWriter<W> {
    pub(crate) fn new(out: W, cfg: TabConfig) -> Self {
        TabWriter {
            out,
            cfg,
            lines: vec![Vec::new()],
            cell: Vec::new(),
        }
    }

    /// Flush and hand back the inner writer.
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    fn terminate_cell(&mut self, htab: bool) -> usize {
        let text = std::mem::take(&mut self.cell);
        let width = display_width(&String::from_utf8_lossy(&text));
        let line = self.lines.last_mut();
        match line {
            Some(line) => {
                line.push(Cell { text, width, htab });
                line.len()
            }
            None => {
                self.lines.push(vec![Cell { text, width, htab }]);
                1
            }
        }
    }

    /// Format and write every buffered line, then start afresh.
    fn flush_lines(&mut self) -> io::Result<()> {
        if !self.cell.is_empty() {
            self.terminate_cell(false);
        }
        let mut widths = Vec::new();
        let mut buf = Vec::new();
        self.format(&mut buf, 0, self.lines.len(), &mut widths);
        self.lines.clear();
        self.lines.push(Vec::new());
        self.out.write_all(&buf)
    }

    /// Lay out lines `line0..line1` for the column `widths.len()`: each run
    /// of consecutive lines that have a tab-terminated cell there is a
    /// block, sized by its widest cell, and formatted recursively for the
    /// next column.
    fn format(&self, buf: &mut Vec<u8>, line0: usize, line1: usize, widths: &mut Vec<usize>) {
        let column = widths.len();
        let mut line0 = line0;
        let mut this = line0;
        while this < line1 {
            // The last cell of a line is never in a column.
            if self.lines[this].len() <= column + 1 {
                this += 1;
                continue;
            }
            self.write_lines(buf, line0, this, widths);
            line0 = this;
            let mut width = self.cfg.min_width;
            let mut discardable = true;
            while this < line1 {
                let line = &self.lines[this];
                if line.len() <= column + 1 {
                    break;
                }
                let c = &line[column];
                width = width.max(c.width + self.cfg.padding);
                if c.width > 0 || c.htab {
                    discardable = false;
                }
                this += 1;
            }
            if discardable && self.cfg.discard_empty_columns {
                width = 0;
            }
            widths.push(width);
            self.format(buf, line0, this, widths);
            widths.pop();
            line0 = this;
        }
        self.write_lines(buf, line0, line1, widths);
    }

    fn write_lines(&self, buf: &mut Vec<u8>, line0: usize, line1: usize, widths: &[usize]) {
        for i in line0..line1 {
            for (j, c) in self.lines[i].iter().enumerate() {
                let width = widths.get(j).copied();
                if c.text.is_empty() {
                    if let Some(w) = width {
                        self.pad(buf, c.width, w);
                    }
                } else if self.cfg.align_right {
                    if let Some(w) = width {
                        self.pad(buf, c.width, w);
                    }
                    buf.extend_from_slice(&c.text);
                } else {
                    buf.extend_from_slice(&c.text);
                    if let Some(w) = width {
                        self.pad(buf, c.width, w);
                    }
                }
            }
            // The last buffered line is the unfinished one: no newline.
            if i + 1 < self.lines.len() {
                buf.push(b'\n');
            }
        }
    }

    fn pad(&self, buf: &mut Vec<u8>, text_width: usize, cell_width: usize) {
        if self.cfg.pad_char == b'\t' {
            let tw = self.cfg.tab_width;
            if tw == 0 {
                return;
            }
            let cell_width = cell_width.div_ceil(tw) * tw;
            let n = cell_width.saturating_sub(text_width);
            buf.extend(std::iter::repeat_n(b'\t', n.div_ceil(tw)));
        } else {
            let n = cell_width.saturating_sub(text_width);
            buf.extend(std::iter::repeat_n(self.cfg.pad_char, n));
        }
    }
}

impl<W: Write> Write for TabWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        for &b in data {
            match b {
                b'\t' | b'\x0b' => {
                    self.terminate_cell(b == b'\t');
                }
                b'\n' | b'\x0c' => {
                    let ncells = self.terminate_cell(false);
                    self.lines.push(Vec::new());
                    // A line with no tab closes every column: nothing
                    // buffered can change width any more.
                    if b == b'\x0c' || ncells == 1 {
                        self.flush_lines()?;
                    }
                }
                _ => self.cell.push(b),
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_lines()?;
        self.out.flush()
    }
}

/// Align `text` in one go.
#[cfg(test)]
pub(crate) fn align(text: &str, cfg: TabConfig) -> String {
    let mut w = TabWriter::new(Vec::new(), cfg);
    // Writing to a Vec cannot fail.
    let _ = w.write_all(text.as_bytes());
    let out = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&out).into_owned()
}

/// The width of `s` on a terminal, as go-runewidth's `StringWidth` (which
/// Docker's tabwriter uses) counts it: East Asian wide and fullwidth
/// characters and emoji take two columns, combining marks, format and
/// control characters none, and a grapheme cluster (a base character with
/// its marks, variation selectors, skin tones and zero-width-joined
/// followers) at most two.
pub(crate) fn display_width(s: &str) -> usize {
    let mut total = 0;
    let mut cluster = 0;
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let w = char_width(c);
        let joins = prev.is_some()
            && (w == 0
                || prev == Some('\u{200d}')
                || matches!(c as u32, 0x1F3FB..=0x1F3FF)
                || (is_regional_indicator(c) && prev.is_some_and(is_regional_indicator)));
        if joins {
            cluster += w;
        } else {
            total += cluster.min(2);
            cluster = w;
        }
        prev = Some(c);
    }
    total + cluster.min(2)
}

fn is_regional_indicator(c: char) -> bool {
    matches!(c as u32, 0x1F1E6..=0x1F1FF)
}

/// Columns one character takes (go-runewidth, not East Asian mode).
fn char_width(c: char) -> usize {
    let r = c as u32;
    if r < 0x20 || (0x7F..=0x9F).contains(&r) || r == 0xAD {
        return 0;
    }
    if r < 0x300 {
        return 1;
    }
    if in_table(r, ZERO_WIDTH) {
        0
    } else if in_table(r, DOUBLE_WIDTH) {
        2
    } else {
        1
    }
}

fn in_table(r: u32, table: &[(u32, u32)]) -> bool {
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < r {
                std::cmp::Ordering::Less
            } else if lo > r {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Combining marks of the common scripts, and invisible format
/// characters (sorted, disjoint).
const ZERO_WIDTH: &[(u32, u32)] = &[
    (0x0300, 0x036F),
    (0x0483, 0x0489),
    (0x0591, 0x05BD),
    (0x05BF, 0x05BF),
    (0x05C1, 0x05C2),
    (0x05C4, 0x05C5),
    (0x05C7, 0x05C7),
    (0x0610, 0x061A),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06DC),
    (0x06DF, 0x06E4),
    (0x06E7, 0x06E8),
    (0x06EA, 0x06ED),
    (0x070F, 0x070F),
    (0x0900, 0x0902),
    (0x093A, 0x093A),
    (0x093C, 0x093C),
    (0x0941, 0x0948),
    (0x094D, 0x094D),
    (0x0951, 0x0957),
    (0x0962, 0x0963),
    (0x0E31, 0x0E31),
    (0x0E34, 0x0E3A),
    (0x0E47, 0x0E4E),
    (0x180B, 0x180F),
    (0x1AB0, 0x1AFF),
    (0x1DC0, 0x1DFF),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x206F),
    (0x20D0, 0x20FF),
    (0x302A, 0x302F),
    (0x3099, 0x309A),
    (0xD800, 0xDFFF),
    (0xFE00, 0xFE0F),
    (0xFE20, 0xFE2F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xE0000, 0xE007F),
    (0xE0100, 0xE01EF),
];

/// East Asian Wide and Fullwidth characters and emoji presentation
/// (sorted, disjoint; after Unicode's EastAsianWidth.txt).
const DOUBLE_WIDTH: &[(u32, u32)] = &[
    (0x1100, 0x115F),
    (0x231A, 0x231B),
    (0x2329, 0x232A),
    (0x23E9, 0x23EC),
    (0x23F0, 0x23F0),
    (0x23F3, 0x23F3),
    (0x25FD, 0x25FE),
    (0x2614, 0x2615),
    (0x2648, 0x2653),
    (0x267F, 0x267F),
    (0x2693, 0x2693),
    (0x26A1, 0x26A1),
    (0x26AA, 0x26AB),
    (0x26BD, 0x26BE),
    (0x26C4, 0x26C5),
    (0x26CE, 0x26CE),
    (0x26D4, 0x26D4),
    (0x26EA, 0x26EA),
    (0x26F2, 0x26F3),
    (0x26F5, 0x26F5),
    (0x26FA, 0x26FA),
    (0x26FD, 0x26FD),
    (0x2705, 0x2705),
    (0x270A, 0x270B),
    (0x2728, 0x2728),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2795, 0x2797),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x2E80, 0x303E),
    (0x3041, 0x33FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xA000, 0xA4CF),
    (0xA960, 0xA97F),
    (0xAC00, 0xD7A3),
    (0xF900, 0xFAFF),
    (0xFE10, 0xFE19),
    (0xFE30, 0xFE6F),
    (0xFF00, 0xFF60),
    (0xFFE0, 0xFFE6),
    (0x16FE0, 0x16FE4),
    (0x17000, 0x18CFF),
    (0x1B000, 0x1B2FF),
    (0x1F004, 0x1F004),
    (0x1F0CF, 0x1F0CF),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F200, 0x1F202),
    (0x1F210, 0x1F23B),
    (0x1F240, 0x1F248),
    (0x1F250, 0x1F251),
    (0x1F260, 0x1F265),
    (0x1F300, 0x1F320),
    (0x1F32D, 0x1F335),
    (0x1F337, 0x1F37C),
    (0x1F37E, 0x1F393),
    (0x1F3A0, 0x1F3CA),
    (0x1F3CF, 0x1F3D3),
    (0x1F3E0, 0x1F3F0),
    (0x1F3F4, 0x1F3F4),
    (0x1F3F8, 0x1F43E),
    (0x1F440, 0x1F440),
    (0x1F442, 0x1F4FC),
    (0x1F4FF, 0x1F53D),
    (0x1F54B, 0x1F54E),
    (0x1F550, 0x1F567),
    (0x1F57A, 0x1F57A),
    (0x1F595, 0x1F596),
    (0x1F5A4, 0x1F5A4),
    (0x1F5FB, 0x1F64F),
    (0x1F680, 0x1F6C5),
    (0x1F6CC, 0x1F6CC),
    (0x1F6D0, 0x1F6D2),
    (0x1F6D5, 0x1F6D8),
    (0x1F6DC, 0x1F6DF),
    (0x1F6EB, 0x1F6EC),
    (0x1F6F4, 0x1F6FC),
    (0x1F7E0, 0x1F7EB),
    (0x1F7F0, 0x1F7F0),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1F9FF),
    (0x1FA70, 0x1FAFF),
    (0x20000, 0x2FFFD),
    (0x30000, 0x3FFFD),
];

#[cfg(test)]
mod tests;
