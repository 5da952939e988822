struct Post {
    id: u32,
}

type Fallible<T> = Result<T, String>;

#[rc::cache]
fn load(id: u32) -> Post {
    Post { id }
}

#[rc::cache]
fn load_result(id: u32) -> Result<Post, String> {
    Ok(Post { id })
}

#[rc::cache]
fn load_alias(id: u32) -> Fallible<Post> {
    Ok(Post { id })
}

#[rc::cache]
async fn load_io(id: u32) -> std::io::Result<Post> {
    Ok(Post { id })
}

fn main() {}
