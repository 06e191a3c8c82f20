//! The in-memory backends keep the contracts of their traits: `MemoryStore` every `Store`
//! rule, `LocalBroker` every one-node `Broker` rule (it is one node by design).

use natter_core::conformance::broker::BrokerBus;
use natter_core::conformance::store::StoreUnderTest;
use natter_core::{Broker, LocalBroker, MemoryStore};
use std::sync::Arc;

async fn fresh_memory_store(_test: &'static str) -> Option<StoreUnderTest> {
    Some(StoreUnderTest::new(Arc::new(MemoryStore::new())))
}

natter_core::store_conformance!(memory_store, fresh_memory_store);

/// Every node of this "cluster" is a separate in-process broker: the one-node rules ask once.
struct LocalBus;

impl BrokerBus for LocalBus {
    async fn node(&self) -> Arc<dyn Broker> {
        Arc::new(LocalBroker::new())
    }
}

async fn local_bus(_test: &'static str) -> Option<LocalBus> {
    Some(LocalBus)
}

natter_core::broker_conformance!(local_broker, local_bus, one_node);
