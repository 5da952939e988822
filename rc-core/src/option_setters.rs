//! The setters of a cache's own options on the builders that carry them.

/// Inside `impl` of a builder that keeps a [`CacheOptions`](crate::CacheOptions)
/// in a field `options`: one setter per cache option, each handing on to
/// the `CacheOptions` setter of the same name. Written once here so that
/// [`CacheBuilder`](crate::CacheBuilder) and the cluster's builder take every
/// option, and the same way.
#[doc(hidden)]
#[macro_export]
macro_rules! __cache_option_setters {
    () => {
        /// Replaces the cache's own options ([`CacheOptions`]) at once.
        pub fn options(mut self, options: $crate::CacheOptions) -> Self {
            self.options = options;
            self
        }

        fn with_options(
            mut self,
            set: impl FnOnce($crate::CacheOptions) -> $crate::CacheOptions,
        ) -> Self {
            self.options = set(self.options);
            self
        }

        /// Prefix added, as is, to every key (see [`CacheOptions::namespace`]).
        pub fn namespace(self, namespace: impl Into<String>) -> Self {
            self.with_options(|o| o.namespace(namespace))
        }

        /// Expiry of writes that give none. Default 3 days.
        pub fn default_expire(self, expire: ::std::time::Duration) -> Self {
            self.with_options(|o| o.default_expire(expire))
        }

        /// The value format (see [`CacheOptions::serializer`]).
        pub fn serializer<S: $crate::Serializer>(self, serializer: S) -> Self {
            self.with_options(|o| o.serializer(serializer))
        }

        /// Results of decorated functions that are returned but never stored
        /// (see [`CacheOptions::bypass_values`]).
        pub fn bypass_values<T, I>(self, values: I) -> Self
        where
            T: $crate::__private::serde::Serialize + Send + Sync + 'static,
            I: IntoIterator<Item = T>,
        {
            self.with_options(|o| o.bypass_values(values))
        }

        /// Keeps up to `capacity` hot values in process memory, coherent with
        /// Redis (see [`CacheOptions::local_cache`]).
        pub fn local_cache(self, capacity: u64) -> Self {
            self.with_options(|o| o.local_cache(capacity))
        }

        /// Bounds the near cache's memory (see [`CacheOptions::local_cache_bytes`]).
        pub fn local_cache_bytes(self, bytes: u64) -> Self {
            self.with_options(|o| o.local_cache_bytes(bytes))
        }

        /// See [`CacheOptions::single_flight`].
        pub fn single_flight(self, on: bool) -> Self {
            self.with_options(|o| o.single_flight(on))
        }

        /// See [`CacheOptions::stale_while_revalidate`].
        pub fn stale_while_revalidate(self, window: ::std::time::Duration) -> Self {
            self.with_options(|o| o.stale_while_revalidate(window))
        }

        /// See [`CacheOptions::stale_if_error`].
        pub fn stale_if_error(self, window: ::std::time::Duration) -> Self {
            self.with_options(|o| o.stale_if_error(window))
        }

        /// See [`CacheOptions::expire_jitter`].
        pub fn expire_jitter(self, fraction: f64) -> Self {
            self.with_options(|o| o.expire_jitter(fraction))
        }

        /// See [`CacheOptions::lease_wait`].
        pub fn lease_wait(self, wait: ::std::time::Duration) -> Self {
            self.with_options(|o| o.lease_wait(wait))
        }
    };
}
