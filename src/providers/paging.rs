//! Following `nextToken` pages. Every AWS list call pages the same way; this
//! is the one loop that does it, and it is bounded: a service that keeps
//! answering with a next token (or repeats the one it was sent) is an error
//! after [`MAX_PAGES`], not a snapshot that never ends.

use super::ProviderError;

/// Pages one listing may take: at 100 items a page, a million items, far
/// beyond any account opsguard watches (20,000 secrets are 200 pages).
pub const MAX_PAGES: usize = 10_000;

/// One page: its items, and the token of the next page (`None` after the
/// last, or when the caller has seen enough).
pub type Page<T> = (Vec<T>, Option<String>);

/// Every item of every page. `page` fetches the page a token names (`None`
/// for the first).
pub async fn all_pages<T>(
    service: &'static str,
    operation: &'static str,
    mut page: impl AsyncFnMut(Option<String>) -> Result<Page<T>, ProviderError>,
) -> Result<Vec<T>, ProviderError> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let sent = token.clone();
        let (more, next) = page(token.take()).await?;
        items.extend(more);
        match next {
            None => return Ok(items),
            Some(t) if sent.as_deref() == Some(t.as_str()) => {
                return Err(ProviderError::new(
                    service,
                    operation,
                    "the service answered a page with the token it was sent, so paging would never end; refusing to go on",
                ))
            }
            Some(t) => token = Some(t),
        }
    }
    Err(ProviderError::new(
        service,
        operation,
        format!("still paging after {MAX_PAGES} pages; refusing to read forever"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn follows_tokens_to_the_last_page() {
        let got = run(all_pages(
            "ECS",
            "ListServices",
            async |t: Option<String>| {
                let n: usize = t.map_or(0, |t| t.parse().expect("number"));
                let next = (n < 3).then(|| (n + 1).to_string());
                Ok((vec![n], next))
            },
        ))
        .expect("pages");
        assert_eq!(got, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_repeated_token_is_an_error_not_a_loop() {
        let mut calls = 0;
        let err = run(all_pages("ECS", "ListTasks", async |_t: Option<String>| {
            calls += 1;
            Ok((vec![calls], Some("same".to_owned())))
        }))
        .expect_err("must stop");
        assert!(err.message.contains("token it was sent"), "{err}");
        assert_eq!(calls, 2);
    }

    #[test]
    fn endless_fresh_tokens_stop_at_the_bound() {
        let mut calls = 0usize;
        let err = run(all_pages("Secrets Manager", "ListSecrets", async |_t| {
            calls += 1;
            Ok((Vec::<u8>::new(), Some(calls.to_string())))
        }))
        .expect_err("must stop");
        assert!(err.message.contains("10000 pages"), "{err}");
        assert_eq!(calls, MAX_PAGES);
    }
}
