#[rc::cache(include_self = "yes")]
fn a(id: u32) -> u32 {
    id
}

#[rc::cache(key_prefix = 2)]
fn b(id: u32) -> u32 {
    id
}

#[rc::cache(cache)]
fn c(id: u32) -> u32 {
    id
}

#[rc::cache(skip = id)]
fn d(id: u32) -> u32 {
    id
}

#[rc::cache(expire = 1, expire = 2)]
fn e(id: u32) -> u32 {
    id
}

fn main() {}
