//! Namespaces: one prefix on every key of a cache, to share a Redis server
//! between uses that must not see each other's keys.
//!
//! Run: `cargo run --example namespace` (Redis at `REDIS_URL`, default
//! `redis://127.0.0.1:6379`).

use rc::Cache;

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let url = examples::redis_url();

    // The namespace is prepended as is: include a separator if you want one.
    let models = Cache::builder().url(&url).namespace("models:").build()?;
    let templates = Cache::builder().url(&url).namespace("templates:").build()?;
    let raw = Cache::open(&url)?; // no namespace: sees the real keys

    models.set("home", &"the home page's data", None)?;
    templates.set("home", &"<h1>{{ title }}</h1>", None)?;

    let from_models: Option<String> = models.get("home")?;
    let from_templates: Option<String> = templates.get("home")?;
    println!("models.get(\"home\")    -> {from_models:?}");
    println!("templates.get(\"home\") -> {from_templates:?}");
    assert_ne!(from_models, from_templates);

    // In Redis, the keys are "models:home" and "templates:home".
    let real: Vec<Option<String>> = raw.get_many(["models:home", "templates:home", "home"])?;
    println!(
        "without namespace, get_many([\"models:home\", \"templates:home\", \"home\"]) -> {real:?}"
    );
    assert_eq!(real[0], from_models);
    assert_eq!(real[1], from_templates);
    println!("models.namespace() -> {:?}", models.namespace());

    models.delete("home")?;
    templates.delete("home")?;
    println!("namespace: ok");
    Ok(())
}
