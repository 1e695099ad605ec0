//! Emails and reports, rendered with minijinja from `resources/templates/`: one shared layout
//! (HTML, and a plain-text twin for email), styled inline from the design tokens' light values
//! because mail clients ignore stylesheets. What sends invitations, password links and
//! notifications (jobs of [`crate::notifications`]) renders here.
//!
//! HTML templates escape every value; a missing value is an error rather than a blank.

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::{Map, Value};

/// The templates, embedded so the binary carries them.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "layout.html.jinja",
        include_str!("../../../resources/templates/layout.html.jinja"),
    ),
    (
        "layout.txt.jinja",
        include_str!("../../../resources/templates/layout.txt.jinja"),
    ),
    (
        "email/invitation.html.jinja",
        include_str!("../../../resources/templates/email/invitation.html.jinja"),
    ),
    (
        "email/invitation.txt.jinja",
        include_str!("../../../resources/templates/email/invitation.txt.jinja"),
    ),
    (
        "email/notice.html.jinja",
        include_str!("../../../resources/templates/email/notice.html.jinja"),
    ),
    (
        "email/notice.txt.jinja",
        include_str!("../../../resources/templates/email/notice.txt.jinja"),
    ),
    (
        "email/password_reset.html.jinja",
        include_str!("../../../resources/templates/email/password_reset.html.jinja"),
    ),
    (
        "email/password_reset.txt.jinja",
        include_str!("../../../resources/templates/email/password_reset.txt.jinja"),
    ),
    (
        "report/table.html.jinja",
        include_str!("../../../resources/templates/report/table.html.jinja"),
    ),
];

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The subject line (the text template's `subject` block).
    pub subject: String,
    /// The HTML part.
    pub html: String,
    /// The plain-text part.
    pub text: String,
}

/// The message templates, ready to render.
pub struct Messages {
    env: Environment<'static>,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

/// The light value of every design token, as `{group: {name: value}}`.
fn theme() -> Value {
    let tokens: Value = serde_json::from_str(include_str!("../../../resources/design/tokens.json"))
        .unwrap_or_default();
    let mut theme = Map::new();
    for (group, members) in tokens.as_object().into_iter().flatten() {
        let Some(members) = members.as_object().filter(|_| !group.starts_with('$')) else {
            continue;
        };
        let values = members
            .iter()
            .map(|(name, value)| (name.clone(), value.get("light").unwrap_or(value).clone()))
            .collect();
        theme.insert(group.clone(), Value::Object(values));
    }
    Value::Object(theme)
}

impl Messages {
    /// The templates, signed with `branding` (the `branding.name` setting).
    pub fn new(branding: &str) -> Result<Messages, minijinja::Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.jinja") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_global("branding", branding.to_owned());
        env.add_global("theme", minijinja::Value::from(Serde(theme())));
        Ok(Messages { env })
    }

    /// The email `name` (`email/<name>.html.jinja` and `.txt.jinja`) for `context`.
    pub fn email(&self, name: &str, context: &impl Serialize) -> Result<Email, minijinja::Error> {
        let context = minijinja::Value::from(Serde(context));
        let html = self
            .env
            .get_template(&format!("email/{name}.html.jinja"))?
            .render(context.clone())?;
        // The subject is a block of the text template: unescaped, as a header must be.
        let mut text = self
            .env
            .get_template(&format!("email/{name}.txt.jinja"))?
            .render_captured(context)?;
        let subject = text.with_state_mut(|state| state.render_block("subject"))?;
        Ok(Email {
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            html,
            text: text.into_output(),
        })
    }

    /// The report `name` (`report/<name>.html.jinja`) for `context`, as an HTML page.
    pub fn report(&self, name: &str, context: &impl Serialize) -> Result<String, minijinja::Error> {
        self.env
            .get_template(&format!("report/{name}.html.jinja"))?
            .render(minijinja::Value::from(Serde(context)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn invitation(inviter: &str) -> Email {
        Messages::new("Acme Cortex")
            .unwrap()
            .email(
                "invitation",
                &json!({
                    "inviter": inviter,
                    "tenant": "Globex",
                    "url": "https://cortex.example/invite/abc?x=1&y=2",
                    "expires_at": "2026-12-07 12:00 UTC",
                }),
            )
            .unwrap()
    }

    #[test]
    fn an_invitation_has_a_subject_an_html_part_and_a_text_part_in_the_shared_layout() {
        let email = invitation("Ada");
        assert_eq!(email.subject, "Ada invited you to Globex on Acme Cortex");
        for part in [&email.html, &email.text] {
            assert!(part.contains("Ada invited you to work in"), "{part}");
            assert!(
                part.contains("Sent by Acme Cortex."),
                "the layout's footer: {part}"
            );
        }
        assert!(email.html.starts_with("<!doctype html>"));
        // Escaped for HTML (`/` too), which a browser or mail client decodes back.
        assert!(
            email
                .html
                .contains("cortex.example&#x2f;invite&#x2f;abc?x=1&amp;y=2"),
            "{}",
            email.html
        );
        assert!(
            email
                .text
                .contains("https://cortex.example/invite/abc?x=1&y=2")
        );
        assert!(
            !email.text.contains('<'),
            "no markup in the text part: {}",
            email.text
        );
        // Styled inline from the design tokens.
        assert!(email.html.contains("background:#2f56d6"), "{}", email.html);
    }

    #[test]
    fn hostile_values_are_escaped_in_html_and_kept_as_text_elsewhere() {
        let email = invitation("<script>alert(1)</script> & \"Eve\"");
        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(
            email
                .html
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
        );
        assert_eq!(
            email.subject,
            "<script>alert(1)</script> & \"Eve\" invited you to Globex on Acme Cortex"
        );
        assert!(email.text.contains("<script>alert(1)</script> & \"Eve\""));
    }

    #[test]
    fn a_missing_value_is_an_error_not_a_blank() {
        let error = Messages::new("Acme")
            .unwrap()
            .email("invitation", &json!({ "inviter": "Ada" }))
            .unwrap_err();
        assert_eq!(error.kind(), minijinja::ErrorKind::UndefinedError);
        assert!(
            Messages::new("Acme")
                .unwrap()
                .email("nope", &json!({}))
                .is_err()
        );
    }

    #[test]
    fn a_report_is_a_table_in_the_shared_layout() {
        let html = Messages::new("Acme Cortex")
            .unwrap()
            .report(
                "table",
                &json!({
                    "title": "Pipeline by stage",
                    "generated_at": "2026-11-30",
                    "summary": "2 stages",
                    "columns": [
                        {"key": "stage", "label": "Stage", "numeric": false},
                        {"key": "total", "label": "Total", "numeric": true}
                    ],
                    "rows": [
                        {"stage": "won", "total": "1200.00"},
                        {"stage": "<lost>", "total": "10.00"}
                    ]
                }),
            )
            .unwrap();
        assert!(html.contains("<th scope=\"col\" style=\"text-align:right"));
        assert!(html.contains(">1200.00</td>") && html.contains(">&lt;lost&gt;</td>"));
        assert!(html.contains("Acme Cortex report: Pipeline by stage."));
        let empty = Messages::new("Acme")
            .unwrap()
            .report("table", &json!({"title": "T", "generated_at": "now", "columns": [{"key": "a", "label": "A", "numeric": false}], "rows": []}))
            .unwrap();
        assert!(empty.contains("No rows."), "{empty}");
    }
}
