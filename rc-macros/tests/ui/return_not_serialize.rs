struct Post {
    id: u32,
}

#[rc::cache]
fn load(id: u32) -> Post {
    Post { id }
}

#[rc::cache]
fn load_result(id: u32) -> Result<Post, String> {
    Ok(Post { id })
}

fn main() {}
