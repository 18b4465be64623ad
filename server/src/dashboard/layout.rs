//! The frame of every dashboard page: head, navigation, the caller.

use crate::auth::WebCaller;
use maud::{html, Markup, DOCTYPE};

/// A full page titled `title` around `body`; with `caller`, the navigation
/// and a logout form.
pub(crate) fn page(title: &str, caller: Option<&WebCaller>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Refrain" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Refrain" }
                    @if let Some(c) = caller {
                        nav {
                            a href="/runs" { "Runs" }
                            a href="/inbox" { "Inbox" }
                            a href="/schedules" { "Schedules" }
                            a href="/kpis" { "KPIs" }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(c.csrf);
                            span.who { (c.identity.name) " · " (c.identity.role) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}
