#[rc::cache(include_self = true)]
fn load(id: u32) -> u32 {
    id
}

struct User;

impl User {
    #[rc::cache(include_self = true)]
    fn find(id: u32) -> u32 {
        id
    }
}

fn main() {}
