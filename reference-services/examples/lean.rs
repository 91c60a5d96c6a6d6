fn main() {
    let name = std::env::args().nth(2).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(shop::services::serve(&name))
        .unwrap();
}
