//! The blob stores keep every rule of the shared `FileStore` suite: `DirFileStore` on a fresh
//! directory, and `PostgresFileStore` on a scratch database (when `NATTER_TEST_POSTGRES` is a
//! `postgres://` URL; a visible skip otherwise, a failure under `NATTER_REQUIRE_SERVICES=1`).

use natter_core::conformance::files::FileStoreUnderTest;
use natter_core::Store;
use natter_store_sql::DirFileStore;
use natter_testkit::ScratchDatabase;
use std::sync::Arc;

async fn fresh_dir_store(_test: &'static str) -> Option<FileStoreUnderTest> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(DirFileStore::new(dir.path().join("files")));
    Some(FileStoreUnderTest::new(store, async move { drop(dir) }))
}

natter_core::file_store_conformance!(dir_file_store, fresh_dir_store);

async fn fresh_postgres_store(test: &'static str) -> Option<FileStoreUnderTest> {
    let scratch = ScratchDatabase::for_test(test, "natter_store_test")?;
    let store = scratch.store(4).await;
    let blobs = Arc::new(store.file_store());
    Some(FileStoreUnderTest::new(blobs, async move {
        store.shutdown().await;
        scratch.drop().await;
    }))
}

natter_core::file_store_conformance!(postgres_file_store, fresh_postgres_store);
