use std::sync::LazyLock;

static CACHE: LazyLock<rc::Cache> = LazyLock::new(rc::testing::NullCache::new);
static ASYNC_CACHE: LazyLock<rc::AsyncCache> = LazyLock::new(rc::testing::NullCache::new_async);

#[rc::cache(cache = CACHE)]
async fn load(id: u32) -> u32 {
    id
}

#[rc::cache(cache = ASYNC_CACHE)]
fn load_sync(id: u32) -> u32 {
    id
}

fn main() {}
