import XCTest

/// A suite whose every test gets its own database in `setUpWithError` (`db`: migrated
/// unless `migrated` is false, cloned from the run's template) and drops it in `tearDown`,
/// audited first unless `auditsOnDrop` is false. A subclass that starts more (a stack, a
/// server) stops it in its own `tearDown` before calling `super.tearDown()`, so the database
/// goes last. A test that needs a database of its own calls `makeDatabase()` instead.
///
/// ```swift
/// final class WebhookTests: DatabaseTestCase {
///     override func setUpWithError() throws { try super.setUpWithError(); app = try InProcessApp(database: db) }
/// }
/// ```
open class DatabaseTestCase: XCTestCase {
    public var db: TestDatabase!

    /// False for suites of the database layer itself (an empty database, no schema).
    open var migrated: Bool { true }
    /// False only where a test breaks invariants on purpose (and says why).
    open var auditsOnDrop: Bool { true }

    open override func setUpWithError() throws {
        try super.setUpWithError()
        db = try TestDatabase(migrated: migrated, auditOnDrop: auditsOnDrop)
    }

    open override func tearDown() {
        db?.drop()
        super.tearDown()
    }
}
