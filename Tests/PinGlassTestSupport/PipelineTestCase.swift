import PinGlass
import Postgres
import XCTest

/// A test of the generation, delivery and refund pipeline against its own migrated database:
/// the `Dependencies` the duties get (`PollFixtures.deps`) and one connection `c`. The
/// database is dropped after each test, audited first unless `auditsOnDrop` is false.
///
/// ```swift
/// final class JobFinishTests: PipelineTestCase {
///     func testOnce() throws { let job = try PollFixtures.runningJob(deps, telegramID: 1); … }
/// }
/// ```
open class PipelineTestCase: XCTestCase {
    public var db: TestDatabase!
    public var deps: Dependencies!
    public var c: Connection!

    /// False only where a test breaks invariants on purpose (and says why).
    open var auditsOnDrop: Bool { true }

    open override func setUpWithError() throws {
        try super.setUpWithError()
        db = try TestDatabase(auditOnDrop: auditsOnDrop)
        deps = try PollFixtures.deps(db)
        c = try db.connect()
    }

    open override func tearDown() {
        db?.drop()
        super.tearDown()
    }
}
