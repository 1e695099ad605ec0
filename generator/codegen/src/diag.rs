//! Diagnostics: every problem found in the user's schemas, located by file, span and JSON
//! pointer, with a code and a fix. Rendered by miette for people and as JSON for tools.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

/// A byte range in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Span {
    /// A span from `start` to `end` (exclusive).
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start,
            len: end.saturating_sub(start),
        }
    }
}

/// A source file's path and text, shared by every diagnostic that points into it.
#[derive(Debug)]
pub struct SourceText {
    /// Path relative to the project root, with `/` separators.
    pub path: String,
    /// The text.
    pub text: String,
    named: NamedSource<String>,
}

impl SourceText {
    /// Wraps a file's path and text.
    pub fn new(path: &str, text: &str) -> Arc<SourceText> {
        Arc::new(SourceText {
            path: path.to_owned(),
            text: text.to_owned(),
            named: NamedSource::new(path, text.to_owned()).with_language("yaml"),
        })
    }

    /// 1-based line and column of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        (line, column)
    }

    /// The byte offset of a 1-based line and column.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (i, text) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                return offset
                    + text
                        .char_indices()
                        .nth(column.saturating_sub(1))
                        .map(|(o, _)| o)
                        .unwrap_or(text.len());
            }
            offset += text.len();
        }
        self.text.len()
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// How bad a diagnostic is. Any error means nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops generation.
    Error,
    /// Reported; generation goes on.
    Warning,
}

/// One labelled place in a file.
#[derive(Debug, Clone)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there.
    pub text: String,
}

/// One problem found in the input.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code, as in `prefiq::lower::unknown_ref`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The file it is in, if any.
    pub source: Option<Arc<SourceText>>,
    /// The JSON pointer of the offending node in that file.
    pub pointer: Option<String>,
    /// Labelled spans; the first is the primary location.
    pub labels: Vec<Label>,
}

impl Diagnostic {
    /// An error with no location yet.
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            help: None,
            source: None,
            pointer: None,
            labels: Vec::new(),
        }
    }

    /// A warning with no location yet.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// Adds the fix.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Locates it in `source` at `span`, labelled `label`.
    pub fn at(
        mut self,
        source: &Arc<SourceText>,
        pointer: &str,
        span: Span,
        label: impl Into<String>,
    ) -> Diagnostic {
        self.source = Some(source.clone());
        self.pointer = Some(pointer.to_owned());
        self.labels.push(Label {
            span,
            text: label.into(),
        });
        self
    }

    /// Adds a secondary label in the same file.
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            text: label.into(),
        });
        self
    }

    /// Whether this stops generation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `(path, line, column)` of the primary location.
    pub fn location(&self) -> Option<(String, usize, usize)> {
        let source = self.source.as_ref()?;
        let (line, column) = self
            .labels
            .first()
            .map(|l| source.line_column(l.span.start))
            .unwrap_or((1, 1));
        Some((source.path.clone(), line, column))
    }

    /// Sort key: file, then position, then message.
    fn sort_key(&self) -> (String, usize, String) {
        let path = self
            .source
            .as_ref()
            .map(|s| s.path.clone())
            .unwrap_or_default();
        let start = self.labels.first().map(|l| l.span.start).unwrap_or(0);
        (path, start, self.message.clone())
    }

    /// The machine-readable form (`--message-format json`).
    pub fn to_json(&self) -> serde_json::Value {
        let (file, line, column) = match self.location() {
            Some((file, line, column)) => (Some(file), Some(line), Some(column)),
            None => (None, None, None),
        };
        serde_json::json!({
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "help": self.help,
            "file": file,
            "line": line,
            "column": column,
            "pointer": self.pointer,
        })
    }
}

/// Sorts diagnostics by file and position and drops exact duplicates.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by_key(|d| d.sort_key());
    diagnostics.dedup_by(|a, b| a.sort_key() == b.sort_key() && a.code == b.code);
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pointer, self.location()) {
            (Some(pointer), Some(_)) if !pointer.is_empty() => {
                write!(f, "{} (at {pointer})", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| &s.named as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        Some(Box::new(self.labels.iter().enumerate().map(
            |(i, label)| {
                let span = (label.span.start, label.span.len);
                if i == 0 {
                    LabeledSpan::new_primary_with_span(Some(label.text.clone()), span)
                } else {
                    LabeledSpan::new_with_span(Some(label.text.clone()), span)
                }
            },
        )))
    }
}

/// How to render diagnostics for people.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Use colour.
    pub color: bool,
    /// Wrap at this width.
    pub width: usize,
}

/// Renders one diagnostic with miette's graphical handler.
pub fn render(diagnostic: &Diagnostic, options: RenderOptions) -> String {
    let theme = if options.color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(options.width)
        .with_context_lines(1);
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = format!("{}: {}\n", diagnostic.code, diagnostic);
    }
    out
}
