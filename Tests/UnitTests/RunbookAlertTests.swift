import Foundation
import XCTest
@testable import PinGlass

/// Every alert the code can raise has its entry in the operator's runbook: an anchor named
/// like the alert key's fixed part (`refund-failed` for `refund-failed:<id>`), so an operator
/// who gets a message finds what it means and which command fixes it. The keys are read from
/// the code (`Alerts.raise(…, key: "…"`, `Condition(key: "…"`, `Alert(key: "…"`), so a new
/// alert without an entry fails here.
final class RunbookAlertTests: XCTestCase {
    static let raisedKey = DocCitations.regex(#"(?:Alerts\.raise\(.*|Condition\(|Alert\()key: "([a-z0-9][a-z0-9-]*[a-z0-9])"#)

    func testEveryAlertKeyHasARunbookEntry() throws {
        let root = try DocCitationTests.repositoryRoot()
        let runbook = try DocCitations.anchors(docsDirectory: root + "/docs")["runbook.md"] ?? []
        var keys: [String: String] = [:]
        for path in try DocCitations.scannedFiles(root: root) where path.hasPrefix("Sources/") && path.hasSuffix(".swift") {
            let text = try String(contentsOfFile: root + "/" + path, encoding: .utf8)
            for match in DocCitations.groups(Self.raisedKey, in: text) {
                if let key = match[1] { keys[key] = path }
            }
        }
        XCTAssertGreaterThan(keys.count, 15, "found too few alert keys in Sources: the scan looked in the wrong place")
        for key in ["refund-failed", "worker-silent", "refunds-owed", "audit"] {
            XCTAssertNotNil(keys[key], "\(key) is raised by the code, but the scan did not find it")
        }
        let missing = keys.keys.sorted().filter { !runbook.contains($0) }
        XCTAssertEqual(missing, [], "alerts without an entry (<a id=\"key\"></a>) in docs/runbook.md: "
                           + missing.map { "\($0) (raised in \(keys[$0]!))" }.joined(separator: ", "))
    }

    /// `audit:<rule>` names one of the audit's rules: each is in the runbook's table.
    func testEveryAuditRuleIsInTheRunbook() throws {
        let root = try DocCitationTests.repositoryRoot()
        let runbook = try String(contentsOfFile: root + "/docs/runbook.md", encoding: .utf8)
        let keys = InvariantAudit.rules.map { InvariantAudit.Violation(rule: $0.0, ids: []).key }
        XCTAssertEqual(keys.count, InvariantAudit.ruleCount)
        XCTAssertEqual(keys.filter { !runbook.contains("`\($0)`") }, [], "audit rules missing from docs/runbook.md#audit")
    }
}
