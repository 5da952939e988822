use std::rc::Rc;

#[rc::cache]
async fn load(id: u32) -> u32 {
    let local = Rc::new(id);
    tokio::task::yield_now().await;
    *local
}

fn main() {}
