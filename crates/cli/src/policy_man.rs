//! gatehouse-policy(5), made from docs/policy.md at build time (the markdown
//! is the one place the format is described): pulldown-cmark parses it and
//! this module writes each element as man(7) roff, tables through tbl(1).

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

const POLICY_MD: &str = include_str!("../../../docs/policy.md");

/// The whole page, for gatehouse `version`.
#[must_use]
pub fn page(version: &str) -> String {
    let mut out = Roff::default();
    // The first line asks man(1) to run tbl(1) for the tables.
    out.raw("'\\\" t\n");
    out.raw(&format!(
        ".TH GATEHOUSE\\-POLICY 5 \"\" \"gatehouse {}\" \"gatehouse manual\"\n",
        escape(version)
    ));
    out.raw(".SH NAME\n");
    out.raw("gatehouse\\-policy \\- the gatehouse policy file, /etc/gatehouse/policy.toml\n");
    out.raw(".SH DESCRIPTION\n");
    render(POLICY_MD, &mut out);
    out.raw(".SH \"SEE ALSO\"\n");
    out.raw("\\fBgatehouse\\fR(1),\n\\fBgatehouse\\-check\\fR(1),\n\\fBgatehouse\\-explain\\fR(1),\n\\fBgatehouse\\-run\\fR(1),\n\\fBgatehouse\\-jit\\fR(1);\n/usr/share/doc/gatehouse/policy.md and jit.md\n");
    out.buf
}

/// Escape text for a roff text line: backslashes, and hyphens as `\-` so
/// they render (and are searchable) as the ASCII hyphen-minus.
fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\e"),
            '-' => o.push_str("\\-"),
            '\'' => o.push_str("\\(aq"),
            '"' => o.push_str("\\(dq"),
            '`' => o.push_str("\\(ga"),
            '\u{2014}' => o.push_str("\\(em"),
            '\u{2013}' => o.push_str("\\(en"),
            '\u{2192}' => o.push_str("\\(->"),
            '\u{2026}' => o.push_str("\\&..."),
            '\u{00a0}' => o.push_str("\\ "),
            c => o.push(c),
        }
    }
    o
}

#[derive(Default)]
struct Roff {
    buf: String,
    /// Inside a narrow table cell: let long code words (paths, GUIDs,
    /// attribute names) break after `/ . : ] -`.
    breakable: bool,
}

/// `\:` is a break point that prints nothing.
fn with_break_points(escaped: &str) -> String {
    let mut o = String::with_capacity(escaped.len() + 8);
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        o.push(c);
        if c == '\\' {
            if let Some(next) = chars.next() {
                o.push(next);
                if next == '-' {
                    o.push_str("\\:");
                }
            }
        } else if matches!(c, '/' | '.' | ':' | ']') {
            o.push_str("\\:");
        }
    }
    o
}

impl Roff {
    fn raw(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    fn at_line_start(&self) -> bool {
        self.buf.is_empty() || self.buf.ends_with('\n')
    }

    /// A request (`.XX args`) on a line of its own.
    fn request(&mut self, r: &str) {
        if !self.at_line_start() {
            self.buf.push('\n');
        }
        self.buf.push_str(r);
        self.buf.push('\n');
    }

    /// Text: a line may not begin with `.` or `'` (it would be a request),
    /// nor with a space (it would break the line).
    fn text(&mut self, s: &str) {
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                self.buf.push('\n');
            }
            let line = if self.at_line_start() {
                line.trim_start()
            } else {
                line
            };
            if self.at_line_start() && line.starts_with(['.', '\'']) {
                self.buf.push_str("\\&");
            }
            let escaped = escape(line);
            if self.breakable {
                self.buf.push_str(&with_break_points(&escaped));
            } else {
                self.buf.push_str(&escaped);
            }
        }
    }

    /// A line of a no-fill block, kept exactly (leading spaces too).
    fn literal_line(&mut self, line: &str) {
        if !self.at_line_start() {
            self.buf.push('\n');
        }
        if line.starts_with(['.', '\'']) || line.is_empty() {
            self.buf.push_str("\\&");
        }
        self.buf.push_str(&escape(line));
        self.buf.push('\n');
    }
}

/// What the renderer is inside of.
#[derive(Default)]
struct State {
    fonts: Vec<&'static str>,
    heading: Option<(HeadingLevel, String)>,
    in_code_block: bool,
    lists: Vec<Option<u64>>,
    /// Paragraphs seen in the current list item (the first needs no break).
    item_paragraphs: usize,
    table_columns: usize,
    in_table_head: bool,
    cell: usize,
}

fn render(markdown: &str, out: &mut Roff) {
    let mut st = State::default();
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES);
    for event in parser {
        match event {
            Event::Start(tag) => start(tag, &mut st, out),
            Event::End(tag) => end(tag, &mut st, out),
            Event::Text(t) => {
                if let Some((_, h)) = st.heading.as_mut() {
                    h.push_str(&t);
                } else if st.in_code_block {
                    for line in t.trim_end_matches('\n').split('\n') {
                        out.literal_line(line);
                    }
                } else {
                    out.text(&t);
                }
            }
            Event::Code(t) => {
                if let Some((_, h)) = st.heading.as_mut() {
                    h.push_str(&t);
                } else {
                    out.raw("\\fB");
                    out.breakable = st.table_columns > 0;
                    out.text(&t);
                    out.breakable = false;
                    out.raw(st.fonts.last().copied().unwrap_or("\\fR"));
                }
            }
            Event::SoftBreak => out.raw("\n"),
            Event::HardBreak => out.request(".br"),
            Event::Rule => out.request(".sp"),
            // Raw HTML, footnotes, math: docs/policy.md has none.
            _ => {}
        }
    }
}

fn start(tag: Tag<'_>, st: &mut State, out: &mut Roff) {
    match tag {
        Tag::Heading { level, .. } => st.heading = Some((level, String::new())),
        Tag::Paragraph => {
            if st.lists.is_empty() {
                if st.table_columns == 0 {
                    out.request(".PP");
                }
            } else {
                if st.item_paragraphs > 0 {
                    out.request(".sp");
                }
                st.item_paragraphs += 1;
            }
        }
        Tag::CodeBlock(_) => {
            st.in_code_block = true;
            out.request(".PP");
            out.request(".RS 2");
            out.request(".nf");
        }
        Tag::List(first) => {
            if !st.lists.is_empty() {
                out.request(".RS 4");
            }
            st.lists.push(first);
        }
        Tag::Item => {
            st.item_paragraphs = 0;
            let mark = match st.lists.last_mut() {
                Some(Some(n)) => {
                    let m = format!("{n}.");
                    *n += 1;
                    m
                }
                _ => "\\(bu".to_owned(),
            };
            out.request(&format!(".IP {mark} 4"));
        }
        Tag::Table(alignments) => {
            st.table_columns = alignments.len().max(1);
            let head = vec!["lB"; st.table_columns].join(" ");
            let body = vec!["lx"; st.table_columns].join(" ");
            out.request(".PP");
            // Cells hold long words (paths, GUIDs): fill them unadjusted.
            out.request(".na");
            out.request(".TS");
            out.request("allbox tab(\t);");
            out.request(&head);
            out.request(&format!("{body}."));
        }
        Tag::TableHead => st.in_table_head = true,
        Tag::TableRow => {}
        Tag::TableCell => {
            if st.cell > 0 {
                out.raw("\t");
            }
            st.cell += 1;
            out.raw("T{\n");
        }
        Tag::Emphasis => push_font(st, out, "\\fI"),
        Tag::Strong => push_font(st, out, "\\fB"),
        _ => {}
    }
}

fn end(tag: TagEnd, st: &mut State, out: &mut Roff) {
    match tag {
        TagEnd::Heading(_) => {
            if let Some((level, text)) = st.heading.take() {
                match level {
                    // The title is the page's NAME.
                    HeadingLevel::H1 => {}
                    HeadingLevel::H2 => {
                        out.request(&format!(".SH \"{}\"", escape(&text.trim().to_uppercase())))
                    }
                    _ => out.request(&format!(".SS \"{}\"", escape(text.trim()))),
                }
            }
        }
        TagEnd::CodeBlock => {
            st.in_code_block = false;
            out.request(".fi");
            out.request(".RE");
        }
        TagEnd::List(_) => {
            st.lists.pop();
            if st.lists.is_empty() {
                out.request(".PP");
            } else {
                out.request(".RE");
            }
        }
        TagEnd::TableCell => {
            if !out.at_line_start() {
                out.raw("\n");
            }
            out.raw("T}");
        }
        TagEnd::TableHead | TagEnd::TableRow => {
            st.in_table_head = false;
            st.cell = 0;
            out.raw("\n");
        }
        TagEnd::Table => {
            st.table_columns = 0;
            out.request(".TE");
            out.request(".ad");
        }
        TagEnd::Emphasis | TagEnd::Strong => {
            st.fonts.pop();
            out.raw(st.fonts.last().copied().unwrap_or("\\fR"));
        }
        _ => {}
    }
}

fn push_font(st: &mut State, out: &mut Roff, font: &'static str) {
    st.fonts.push(font);
    out.raw(font);
}

#[cfg(test)]
mod tests;
