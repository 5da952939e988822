// One misuse, one error: the function and its generated siblings still
// exist with their usual signatures, so their callers compile.

#[rc::cache(expires = 60)]
fn load(id: u32, name: &str) -> String {
    format!("{id}{name}")
}

#[rc::cache(expire = 0)]
async fn fetch(id: u32) -> Result<u32, String> {
    Ok(id)
}

struct Repo;

impl Repo {
    #[rc::cache]
    fn get(&self, (a, b): (u32, u32)) -> u32 {
        a + b
    }
}

#[rc::cache]
fn show(id: u32) -> impl std::fmt::Display {
    id
}

async fn callers() {
    let repo = Repo;
    let s: String = load(1, "a");
    let deleted: bool = invalidate_load(1, "a");
    let tried: rc::Result<bool> = try_invalidate_load(1, "a");
    let batch = rc::testing::NullCache::new().batch();
    let promise: rc::Promise<String> = batch_load(&batch, 1, "a");
    let _ = (s, deleted, tried, promise);

    let n: Result<u32, String> = fetch(1).await;
    let deleted: bool = invalidate_fetch(1).await;
    let tried: rc::Result<bool> = try_invalidate_fetch(1).await;
    let abatch = rc::testing::NullCache::new_async().batch();
    let promise: rc::Promise<Result<u32, String>> = batch_fetch(&abatch, 1);
    let _ = (n, deleted, tried, promise);

    let n: u32 = repo.get((1, 2));
    let deleted: bool = repo.invalidate_get((1, 2));
    let promise: rc::Promise<u32> = repo.batch_get(&batch, (1, 2));
    let _ = (n, deleted, promise);

    let shown = show(1).to_string();
    let deleted: bool = invalidate_show(1);
    let tried: rc::Result<bool> = try_invalidate_show(1);
    let _ = (shown, deleted, tried);
}

fn main() {
    let _ = callers();
}
