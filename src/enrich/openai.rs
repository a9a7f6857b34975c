//! The `openai` provider: any OpenAI-compatible chat completions endpoint (OpenAI, DeepSeek,
//! vLLM, Ollama, llama.cpp). The model is asked for exactly the answer JSON; an invalid answer is
//! sent back once with what is wrong, and only a second invalid answer is a failure.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Answer, EnrichError, Enricher, Outcome, Request, Usage, validate};

pub(super) fn endpoint(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

/// The request body for `messages` so far.
fn body_with(enricher: &Enricher, messages: &[Value]) -> Value {
    let config = enricher.config();
    json!({
        "model": config.model,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "response_format": {"type": "json_object"},
        "messages": messages,
    })
}

pub(super) fn body(enricher: &Enricher, request_json: &str, request: &Request) -> Value {
    body_with(enricher, &first_messages(enricher, request_json, request))
}

fn first_messages(enricher: &Enricher, request_json: &str, request: &Request) -> Vec<Value> {
    let prompts = &enricher.prompts;
    vec![
        json!({"role": "system", "content": prompts.system()}),
        json!({"role": "user", "content": user_message(enricher, request_json, request)}),
    ]
}

/// The user message; in title mode it says that only the titles are asked for.
fn user_message(enricher: &Enricher, request_json: &str, request: &Request) -> String {
    let message = enricher
        .prompts
        .user(&request.targets, &request.language, request_json);
    if request.titles_only {
        format!(
            "{message}\n\nOnly the title is sent: answer with one section per target language, \
             its title translated and its body empty, and no section in the article's own \
             language."
        )
    } else {
        message
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct CompletionUsage {
    #[serde(default)]
    prompt_tokens: i64,
    #[serde(default)]
    completion_tokens: i64,
}

pub(super) async fn enrich(enricher: &Enricher, request: &Request) -> Outcome {
    let request_json = match serde_json::to_string(request) {
        Ok(json) => json,
        Err(e) => {
            return Outcome {
                result: Err(EnrichError::Failed(e.to_string())),
                usage: Usage::default(),
            };
        }
    };
    let mut messages = first_messages(enricher, &request_json, request);
    let mut usage = Usage::default();
    for attempt in 0..2 {
        let (content, cost) = match complete(enricher, &messages).await {
            Ok(done) => done,
            Err(e) => {
                return Outcome {
                    result: Err(e),
                    usage,
                };
            }
        };
        usage = usage.add(cost);
        let checked = serde_json::from_str::<Answer>(&content)
            .map_err(|e| format!("not the answer JSON: {e}"))
            .and_then(|answer| validate(&answer, request).map(|()| answer));
        match checked {
            Ok(answer) => {
                return Outcome {
                    result: Ok(answer),
                    usage,
                };
            }
            Err(problem) if attempt == 0 => {
                messages.push(json!({"role": "assistant", "content": content}));
                messages.push(json!({"role": "user", "content": format!(
                    "That answer cannot be used: {problem}. Answer again with only the JSON object, \
                     one section per target language and one in the article's own language."
                )}));
            }
            Err(problem) => {
                return Outcome {
                    result: Err(EnrichError::Invalid(problem)),
                    usage,
                };
            }
        }
    }
    Outcome {
        result: Err(EnrichError::Invalid("no valid answer".to_owned())),
        usage,
    }
}

/// One chat completion: the message content and its cost.
async fn complete(enricher: &Enricher, messages: &[Value]) -> Result<(String, Usage), EnrichError> {
    let config = enricher.config();
    let url = endpoint(&config.base_url);
    let mut call = enricher
        .http
        .post(&url)
        .json(&body_with(enricher, messages));
    // The key is read when needed and goes only into this header: never into config, logs,
    // state or error messages.
    if let Ok(key) = std::env::var(&config.api_key_env)
        && !key.is_empty()
    {
        call = call.bearer_auth(key);
    }
    let response = call.send().await.map_err(|e| {
        let kind = if e.is_timeout() {
            format!(
                "did not answer within {}",
                humantime::format_duration(config.timeout)
            )
        } else if e.is_connect() {
            "could not be reached".to_owned()
        } else {
            "failed".to_owned()
        };
        EnrichError::Failed(format!("the model endpoint {url} {kind}"))
    })?;
    let status = response.status();
    if status.as_u16() == 429 || status.as_u16() == 503 {
        let retry_after = crate::fetch::hints::retry_after(response.headers(), Utc::now());
        return Err(EnrichError::Throttled {
            message: format!(
                "the model endpoint {url} answered HTTP {status}; asked to retry later"
            ),
            retry_after,
        });
    }
    if !status.is_success() {
        return Err(EnrichError::Failed(format!(
            "the model endpoint {url} answered HTTP {status}"
        )));
    }
    let completion: Completion = response.json().await.map_err(|e| {
        EnrichError::Invalid(format!(
            "the endpoint's reply is not a chat completion: {e}"
        ))
    })?;
    let usage = completion.usage.map_or_else(Usage::default, |u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    });
    let content = completion
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| EnrichError::Invalid("the completion has no message content".to_owned()))?;
    Ok((content, usage))
}
