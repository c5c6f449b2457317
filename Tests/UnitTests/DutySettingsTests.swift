import XCTest
@testable import PinGlass

/// Each duty's settings are declared once, in its `Config.settings` table: the defaults
/// pass their own checks, names are unique, a value is read and written where the duty
/// uses it, and the generation policy is one value whose rows dispatch, poll-kie and sweep
/// each take as they use them.
final class DutySettingsTests: XCTestCase {
    /// Name, flags offered on the command line, and the default configuration's refusal (nil).
    func table<C: DutyConfig>(_: C.Type) -> (names: [String], offered: [String], refusal: Error?) {
        let names = C.settings.map(\.name)
        let offered = C.settings.filter(\.onCommandLine).map(\.name)
        do { try C().validate(); return (names, offered, nil) } catch { return (names, offered, error) }
    }

    func testEveryTableIsConsistentWithItsDefaults() {
        let tables = [
            ("dispatch", table(Dispatcher.Config.self)), ("poll-kie", table(KiePoller.Config.self)),
            ("sweep", table(Sweeper.Config.self)), ("deliver", table(Deliverer.Config.self)),
            ("refund", table(RefundSender.Config.self)), ("reconcile", table(Reconciler.Config.self)),
            ("prune", table(Pruner.Config.self)),
        ]
        for (duty, t) in tables {
            XCTAssertNil(t.refusal, "\(duty): the defaults pass their own table")
            XCTAssertEqual(Set(t.names).count, t.names.count, "\(duty): each setting once: \(t.names)")
            XCTAssertFalse(t.offered.isEmpty, duty)
        }
        XCTAssertEqual(tables.first { $0.0 == "dispatch" }?.1.offered,
                       ["batch-size", "max-attempts", "task-deadline", "reference-link-ttl"], "the flags in the order --help lists them")
    }

    /// `--max-attempts` and `--task-deadline` are the policy's rows, declared once in
    /// `GenerationPolicy.settings` with one `--help` line each: each generation duty takes the
    /// rows it reads (poll-kie never reads the attempts), offers them on its command line
    /// (dispatch records the deadline it is given), and they write the policy each duty reads.
    func testTheGenerationPolicyIsSharedByDispatchPollKieAndSweep() throws {
        func policyRows<C: DutyConfig>(_: C.Type) -> [String] {
            C.settings.filter { ["max-attempts", "task-deadline"].contains($0.name) }
                .map { "\($0.name)\($0.onCommandLine ? "" : " (in code)")" }
        }
        XCTAssertEqual(policyRows(Dispatcher.Config.self), ["max-attempts", "task-deadline"])
        XCTAssertEqual(policyRows(KiePoller.Config.self), ["task-deadline"])
        XCTAssertEqual(policyRows(Sweeper.Config.self), ["max-attempts", "task-deadline"])

        func help<C: DutyConfig>(_: C.Type, _ name: String) -> String? { C.settings.first { $0.name == name }?.help }
        let table = Dictionary(uniqueKeysWithValues: GenerationPolicy.settings.map { ($0.name, $0.help) })
        XCTAssertEqual(help(Dispatcher.Config.self, "max-attempts"), table["max-attempts"])
        XCTAssertEqual(help(Sweeper.Config.self, "max-attempts"), table["max-attempts"])
        XCTAssertEqual(help(Dispatcher.Config.self, "task-deadline"), table["task-deadline"], "one meaning, one --help line")
        XCTAssertEqual(help(KiePoller.Config.self, "task-deadline"), table["task-deadline"])
        XCTAssertEqual(help(Sweeper.Config.self, "task-deadline"), table["task-deadline"])

        var sweep = Sweeper.Config()
        let deadline = try XCTUnwrap(Sweeper.Config.settings.first { $0.name == "task-deadline" })
        guard case .wholeSeconds(let path) = deadline.field else { return XCTFail("task-deadline is a duration") }
        sweep[keyPath: path] = 1800
        XCTAssertEqual(sweep.generation.taskDeadlineSeconds, 1800, "the flag writes the shared policy")
        var dispatched = Dispatcher.Config()
        let recorded = try XCTUnwrap(Dispatcher.Config.settings.first { $0.name == "task-deadline" })
        guard case .wholeSeconds(let dispatchPath) = recorded.field else { return XCTFail("task-deadline is a duration") }
        dispatched[keyPath: dispatchPath] = 1800
        XCTAssertEqual(dispatched.generation.taskDeadlineSeconds, 1800, "dispatch's flag writes the deadline it records")
        XCTAssertEqual(Dispatcher.Config().generation, KiePoller.Config().generation, "one set of defaults")
        XCTAssertEqual(Sweeper.Config().generation, KiePoller.Config().generation)

        sweep.generation.taskDeadlineSeconds = 30
        XCTAssertThrowsError(try sweep.validate()) {
            XCTAssertEqual("\($0)", "--task-deadline must be between 60s and 86400s (got 30)")
        }
        var dispatch = Dispatcher.Config()
        dispatch.generation.taskDeadlineSeconds = 30
        XCTAssertThrowsError(try dispatch.validate()) {
            XCTAssertEqual("\($0)", "--task-deadline must be between 60s and 86400s (got 30)")
        }
        dispatch = Dispatcher.Config()
        dispatch.generation.maxAttempts = 0
        XCTAssertThrowsError(try dispatch.validate()) { XCTAssertEqual("\($0)", "--max-attempts must be between 1 and 50 (got 0)") }
    }

    /// A range that depends on another setting is checked against that setting's value.
    func testARangeCanDependOnAnotherSetting() {
        var refund = RefundSender.Config()
        refund.timeout = 5
        refund.leaseSeconds = 25
        XCTAssertNoThrow(try refund.validate(), "3 × 5s + 10s")
        refund.leaseSeconds = 24
        XCTAssertThrowsError(try refund.validate()) { XCTAssertEqual("\($0)", "--lease must be between 25s and 3600s (got 24)") }
        var prune = Pruner.Config()
        prune.deliverySeconds = 3 * 86_400
        XCTAssertThrowsError(try prune.validate()) { XCTAssertEqual("\($0)", "--deliveries must be between 7d and 3650d (got 3)") }
    }
}
