import PinGlass
import Postgres
import XCTest

/// A test of the generation, delivery and refund pipeline against its own migrated database:
/// the `Dependencies` the duties get (`PollFixtures.deps`) and one connection `c`. The
/// database is dropped after each test, audited first unless `auditsOnDrop` is false.
///
/// ```swift
/// final class JobFinishTests: PipelineTestCase {
///     func testOnce() throws { let job = try JobFixtures.running(deps, telegramID: 1); … }
/// }
/// ```
open class PipelineTestCase: DatabaseTestCase {
    public var deps: Dependencies!
    public var c: Connection!

    open override func setUpWithError() throws {
        try super.setUpWithError()
        deps = try PollFixtures.deps(db)
        c = try db.connect()
    }
}
