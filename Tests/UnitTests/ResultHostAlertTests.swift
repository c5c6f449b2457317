import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
import ProviderWire
@testable import PinGlass

/// A Kie result from a host that `KIE_RESULT_HOSTS` does not list is refused until its task's
/// deadline and then refunded: the operator is alerted at once, once per host and hour, with
/// the entry that fixes it.
final class ResultHostAlertTests: PipelineTestCase {
    func alerts() throws -> [String] {
        try c.query("SELECT payload->>'text' AS text FROM telegram_deliveries WHERE kind = 'alert' ORDER BY id").map { $0.requiredString("text") }
    }

    func testARefusedResultHostIsAlertedOncePerHourWithTheFix() throws {
        let kie = FakeKie()
        let d = try PollFixtures.deps(db, env: ["KIE_RESULT_HOSTS": "cdn.kie.test", "ADMIN_TELEGRAM_CHAT_ID": "9300"])
        d.kie = kie
        let job = try JobFixtures.running(d, telegramID: 8921, photos: 7)
        // Two results from Kie's host (refused before any connection), one refused for plain http.
        let urls = ["https://tempfile.aiquickdraw.com/r/a.png", "https://tempfile.aiquickdraw.com/r/b.png", "http://cdn.kie.test/r/c.png"]
        for (t, url) in zip(job.tasks, urls) {
            kie.states[t.kieID] = .success(KieTaskInfo(taskID: t.kieID, state: .success, resultURLs: [url]))
        }
        let poller = try KiePoller(deps: d)
        let report = try poller.runOnce(now: d.clock(), deadline: d.clock() + 55)
        XCTAssertEqual(report.errors, 3)
        XCTAssertEqual(try Counters.value(c, "kie.result_url_refused"), 3)

        let texts = try alerts()
        XCTAssertEqual(texts.count, 1, "one alert for the unlisted host; none for a listed host over http: \(texts)")
        let text = texts.first ?? ""
        XCTAssertTrue(text.contains("Kie results from tempfile.aiquickdraw.com are refused"), text)
        XCTAssertTrue(text.contains("Add *.aiquickdraw.com (any subdomain) or the exact host tempfile.aiquickdraw.com to KIE_RESULT_HOSTS"), text)

        try c.execute("UPDATE generation_tasks SET run_at = now() WHERE state = 'running'")
        _ = try poller.runOnce(now: d.clock(), deadline: d.clock() + 55)
        XCTAssertEqual(try Counters.value(c, "kie.result_url_refused"), 6)
        XCTAssertEqual(try alerts().count, 1, "once per host and hour")
    }

    /// The old subdomain form of Kie's host refuses to start the poller, naming the fix;
    /// the wildcard, the exact host and unrelated exact hosts start it.
    func testAParentDomainEntryOfKiesHostRefusesToStart() throws {
        for hosts in ["aiquickdraw.com", "127.0.0.1, AIQuickDraw.com"] {
            let d = try PollFixtures.deps(db, env: ["KIE_RESULT_HOSTS": hosts])
            d.kie = FakeKie()
            XCTAssertThrowsError(try KiePoller(deps: d), hosts) { error in
                XCTAssertEqual("\(error)", "KIE_RESULT_HOSTS is invalid: entry aiquickdraw.com matches that exact host only, not Kie's "
                               + "tempfile.aiquickdraw.com: write *.aiquickdraw.com (any subdomain) or tempfile.aiquickdraw.com")
            }
        }
        for hosts in ["*.aiquickdraw.com", "tempfile.aiquickdraw.com", "cdn.example", "quickdraw.com"] {
            let d = try PollFixtures.deps(db, env: ["KIE_RESULT_HOSTS": hosts])
            d.kie = FakeKie()
            XCTAssertNoThrow(try KiePoller(deps: d), hosts)
        }
    }
}
