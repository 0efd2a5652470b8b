//! The operations table as `docs/architecture.md` prints it, and the tests that
//! keep the table, the wire's method list and the doc in step (test-only).

use loopsy_transports::wire::method;

use super::capabilities::Need;
use super::operations::{Access, MALFORMED, OPERATIONS, UNKNOWN};

/// The operations as `docs/architecture.md` lists them (checked by a test).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| method | REST route | family | who | capability | guards | audit | streams over |\n|---|---|---|---|---|---|---|---|\n",
    );
    for o in OPERATIONS {
        let need = match o.need {
            Need::Nothing => "—".to_owned(),
            Need::One(capability) => format!("`{}`", capability.name()),
            Need::Sessions => "`sessions:*`".to_owned(),
        };
        let who = format!(
            "{:?}{}",
            o.access,
            if o.phones && o.access != Access::OwnerOrPhones {
                ", phones"
            } else {
                ""
            }
        );
        let list = |items: Vec<String>| {
            if items.is_empty() {
                "—".to_owned()
            } else {
                items.join(", ")
            }
        };
        out.push_str(&format!(
            "| `{}` | {} | {:?} | {who} | {need} | {} | {:?} | {} |\n",
            o.method,
            o.rest.map_or("—".to_owned(), |r| format!("`{r}`")),
            o.family,
            list(o.guards.iter().map(|g| format!("{g:?}")).collect()),
            o.audit,
            list(
                o.streams_over
                    .unwrap_or_default()
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect()
            ),
        ));
    }
    out
}

mod tests {
    use super::*;

    #[test]
    fn every_method_the_wire_parses_has_one_entry() {
        for name in method::ALL {
            let entries = OPERATIONS.iter().filter(|o| o.method == *name).count();
            // `session.detach` ends an attach inside the framed connection and
            // is no request of its own.
            let expected = usize::from(*name != method::SESSION_DETACH);
            assert_eq!(entries, expected, "{name}");
        }
        for operation in OPERATIONS {
            let known = method::ALL.contains(&operation.method)
                || [UNKNOWN, MALFORMED].contains(&operation.method);
            assert!(known, "{} is not a wire method", operation.method);
        }
    }

    #[test]
    fn the_architecture_doc_lists_every_operation() {
        let doc = include_str!("../../../docs/architecture.md");
        assert!(
            doc.contains(&markdown_table()),
            "docs/architecture.md must contain, verbatim:\n{}",
            markdown_table()
        );
    }
}
