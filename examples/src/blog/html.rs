//! The pages. Every piece of user input goes through [`escape`].

use std::time::UNIX_EPOCH;

use super::history::{self, Rates};
use super::model::{Post, Summary};
use super::store::ServerState;

/// Makes user text safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Which menu entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Posts,
    New,
    Stats,
    None,
}

/// A whole page; `title` is escaped here, `body` must already be HTML.
pub fn page(title: &str, nav: Nav, body: &str) -> String {
    let link = |href: &str, label: &str, me: Nav| {
        let class = if nav == me { " class=\"current\"" } else { "" };
        format!("<a href=\"{href}\"{class}>{label}</a>")
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · rc blog</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n<body>\n\
         <header><nav><a class=\"brand\" href=\"/\">rc blog</a>{}{}{}</nav></header>\n\
         <main>\n{body}\n</main>\n</body>\n</html>\n",
        escape(title),
        link("/", "Posts", Nav::Posts),
        link("/new", "New post", Nav::New),
        link("/stats", "Stats", Nav::Stats),
    )
}

/// The list page: one page of summaries, with links to the pages around it.
pub fn list_page(posts: &[Summary], page_no: usize, pages: usize, total: usize) -> String {
    let mut body = String::from("<h1>Posts</h1>\n");
    if posts.is_empty() {
        body.push_str(
            "<p class=\"empty\">No posts yet. <a href=\"/new\">Write the first one</a>.</p>\n",
        );
    } else {
        body.push_str("<ul class=\"posts\">\n");
        for p in posts {
            body += &format!(
                "<li><a href=\"/post/{}\">{}</a><span class=\"meta\">{}</span></li>\n",
                p.id,
                escape(&p.title),
                utc(p.created_ts)
            );
        }
        body.push_str("</ul>\n");
    }
    if pages > 1 {
        let newer = if page_no > 1 {
            format!("<a href=\"/?page={}\">← Newer</a>", page_no - 1)
        } else {
            "<span></span>".to_owned()
        };
        let older = if page_no < pages {
            format!("<a href=\"/?page={}\">Older →</a>", page_no + 1)
        } else {
            "<span></span>".to_owned()
        };
        body += &format!(
            "<nav class=\"pager\">{newer}<span>Page {page_no} of {pages} · {total} posts</span>{older}</nav>\n"
        );
    }
    page("Posts", Nav::Posts, &body)
}

/// One post, with its edit and delete buttons.
pub fn post_page(post: &Post) -> String {
    let changed = match post.updated_ts {
        Some(ts) => format!(" · edited {}", utc(ts)),
        None => String::new(),
    };
    let body = format!(
        "<article>\n<h1>{}</h1>\n<p class=\"meta\">Posted {}{changed}</p>\n\
         <div class=\"content\">{}</div>\n</article>\n\
         <div class=\"actions\"><a class=\"button secondary\" href=\"/post/{id}/edit\">Edit</a>\
         <form action=\"/post/{id}/delete\" method=\"post\" \
         onsubmit=\"return confirm('Delete this post?')\"><button class=\"danger\" type=\"submit\">Delete</button></form>\
         <a href=\"/\">All posts</a></div>",
        escape(&post.title),
        utc(post.created_ts),
        escape(&post.content),
        id = post.id,
    );
    page(&post.title, Nav::None, &body)
}

/// The add or edit form, filled with `title` and `content`, and `error`
/// above it when the last submission was refused.
pub fn form_page(editing: Option<i64>, title: &str, content: &str, error: Option<&str>) -> String {
    let (heading, action, button, nav, cancel) = match editing {
        Some(id) => (
            "Edit post",
            format!("/post/{id}"),
            "Save",
            Nav::None,
            format!("/post/{id}"),
        ),
        None => (
            "New post",
            "/add".to_owned(),
            "Publish",
            Nav::New,
            "/".to_owned(),
        ),
    };
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e))
    });
    let body = format!(
        "<h1>{heading}</h1>\n{error}<form class=\"post\" action=\"{action}\" method=\"post\">\n\
         <label for=\"title\">Title</label>\
         <input type=\"text\" id=\"title\" name=\"title\" value=\"{}\" autofocus>\n\
         <label for=\"content\">Text</label>\
         <textarea id=\"content\" name=\"content\">{}</textarea>\n\
         <div class=\"actions\"><button type=\"submit\">{button}</button> <a href=\"{cancel}\">Cancel</a></div>\n</form>",
        escape(title),
        escape(content),
    );
    page(heading, nav, &body)
}

/// What the stats page shows.
pub struct StatsView<'a> {
    /// Counters since start.
    pub stats: rc::Stats,
    /// Rates over the last minutes.
    pub rates: &'a [Rates],
    /// Each store's state.
    pub servers: &'a [ServerState],
}

/// The stats page: chart, totals and servers.
pub fn stats_page(v: &StatsView<'_>) -> String {
    let s = v.stats;
    let reads = s.hits + s.misses;
    let ratio = if reads == 0 {
        "–".to_owned()
    } else {
        format!("{:.1} %", 100.0 * s.hits as f64 / reads as f64)
    };
    let servers: String = v
        .servers
        .iter()
        .map(|srv| {
            let (class, word) = if srv.up { ("up", "up") } else { ("down", "down") };
            format!(
                "<tr><td>{}</td><td><code>{}</code></td><td class=\"state {class}\">{word}</td><td>{}</td></tr>\n",
                escape(srv.role),
                escape(&srv.address),
                escape(&srv.note)
            )
        })
        .collect();
    let mut chart = format!(
        "{}\n<p class=\"legend\">{}</p>",
        history::chart(v.rates),
        history::legend()
    );
    if v.rates.is_empty() {
        chart.push_str("\n<p class=\"notice\">Just started: a point every 5 seconds.</p>");
    }
    let body = format!(
        "<h1>Cache stats</h1>\n<h2>Last minutes</h2>\n{chart}\n\
         <h2>Since start</h2>\n<div class=\"tiles\">\
         <div><b>{}</b>hits</div><div><b>{}</b>misses</div><div><b>{ratio}</b>hit ratio</div>\
         <div><b>{}</b>errors</div><div><b>{}</b>stored</div><div><b>{}</b>undecodable</div></div>\n\
         <h2>Servers</h2>\n<table class=\"servers\">\n<tr><th>role</th><th>address</th><th>state</th><th></th></tr>\n\
         {servers}</table>\n\
         <p class=\"meta\">Also as <a href=\"/stats.json\">JSON</a> and, per cached function, \
         as <a href=\"/metrics\">Prometheus metrics</a>.</p>",
        s.hits, s.misses, s.errors, s.sets, s.decode_errors
    );
    page("Stats", Nav::Stats, &body)
}

/// The page of a post that does not exist.
pub fn not_found() -> String {
    page(
        "Not found",
        Nav::None,
        "<h1>Not found</h1>\n<p>There is no such post. <a href=\"/\">All posts</a></p>",
    )
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix time.
pub fn utc(ts: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(ts.max(0) as u64);
    // RFC 3339 is `YYYY-MM-DDTHH:MM:SSZ`; a page only needs the minutes.
    let rfc = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} {} UTC", &rfc[..10], &rfc[11..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn form_keeps_escaped_input_and_shows_the_error() {
        let html = form_page(None, "", "a \"quote\" <b>", Some("A post needs a title."));
        assert!(html.contains("A post needs a title."), "{html}");
        assert!(
            html.contains("a &quot;quote&quot; &lt;b&gt;</textarea>"),
            "{html}"
        );
    }
}
