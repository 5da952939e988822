#[rc::cache(stale_while_revalidate = -30)]
fn a(id: u32) -> u32 {
    id
}

#[rc::cache(stale_if_error = "1h")]
fn b(id: u32) -> u32 {
    id
}

#[rc::cache(expire_jitter = 1.5)]
fn c(id: u32) -> u32 {
    id
}

#[rc::cache(expire_jitter = 1)]
fn d(id: u32) -> u32 {
    id
}

#[rc::cache(stale_while_revalidate = 2.5)]
fn e(id: u32) -> u32 {
    id
}

struct S;

impl S {
    #[rc::cache(stale_while_revalidate = 30)]
    fn f(&self, id: u32) -> u32 {
        id
    }
}

#[rc::cache(stale_while_revalidate = 30)]
fn g(ids: &mut Vec<u32>) -> u32 {
    ids.len() as u32
}

fn main() {}
