import Foundation
import PinGlassTesting
import XCTest
@testable import PinGlass
@testable import PinGlassWeb

/// deploy/'s monitoring files: the Prometheus configuration, its alert rules and the Grafana
/// dashboard. promtool checks the first two and runs the rules' unit tests
/// (`pinglass-alerts.test.yml`); then every metric a rule or a panel reads must be a family
/// a real `/metrics` answer declares, and every route, queue or counter a matcher names must
/// exist, so no rule watches a series the application does not export.
final class DeployMonitoringTests: DatabaseTestCase {
    static let requiredAlerts = ["PinGlassQueueStale", "PinGlassDutySilent", "PinGlassRefundsOwed",
                                 "PinGlassWebhookSignatureFailures", "PinGlassPaymentSuccessRatioLow",
                                 "PinGlassKieOutOfCredits", "PinGlassHTTP5xx"]
    /// Series Prometheus makes itself.
    static let prometheusOwn: Set<String> = ["up"]

    var root: String!
    override func setUpWithError() throws {
        try super.setUpWithError()
        root = try TestEnvironment.root()
    }

    func promtool(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let (status, out, err) = try Subprocess.capture(try TestEnvironment.promtool(), args)
        XCTAssertEqual(status, 0, "promtool \(args.joined(separator: " ")): \(out) \(err)", file: file, line: line)
        return out + err
    }

    func testPromtoolAcceptsTheConfigTheRulesAndTheRulesTests() throws {
        let config = try promtool(["check", "config", root + "/deploy/prometheus.yml"])
        XCTAssertTrue(config.contains("SUCCESS: 1 rule files found"), config)
        let rules = try promtool(["check", "rules", root + "/deploy/pinglass-alerts.yml"])
        XCTAssertTrue(rules.contains("SUCCESS"), rules)
        let tests = try promtool(["test", "rules", root + "/deploy/pinglass-alerts.test.yml"])
        XCTAssertTrue(tests.contains("SUCCESS"), tests)
    }

    /// promtool is not a rubber stamp: a rule that does not parse is refused.
    func testPromtoolRefusesABrokenRule() throws {
        let path = try TestEnvironment.tmp() + "/broken-rules-\(UUID().uuidString).yml"
        defer { unlink(path) }
        try "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(pinglass_http_requests_total[5m]) >\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let (status, _, _) = try Subprocess.capture(try TestEnvironment.promtool(), ["check", "rules", path])
        XCTAssertNotEqual(status, 0)
    }

    /// A YAML file as JSON values (PyYAML reads it).
    func yaml(_ path: String) throws -> Any {
        let (status, out, err) = try Subprocess.capture(try TestEnvironment.yamlPython(), [
            "-c", "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)", path])
        XCTAssertEqual(status, 0, err)
        return try JSONSerialization.jsonObject(with: Data(out.utf8))
    }

    /// The families a real `/metrics` answer declares (histograms with their three series).
    func exportedNames() throws -> Set<String> {
        let app = try InProcessApp(database: db)
        app.deps.requestMetrics = try RequestMetrics.forApp()
        let scrape = PrometheusScrape(try app.client.get("/metrics").text)
        XCTAssertEqual(scrape.problems, [])
        XCTAssertEqual(scrape["pinglass_database_up"], 1)
        var names = Set<String>()
        for (name, type) in scrape.types {
            names.insert(name)
            if type == "histogram" { for s in ["_bucket", "_sum", "_count"] { names.insert(name + s) } }
        }
        return names
    }

    /// Metric names an expression reads (quoted label values removed first).
    static func metrics(in expr: String) -> Set<String> {
        let unquoted = expr.replacingOccurrences(of: #""(?:[^"\\]|\\.)*""#, with: "\"\"", options: .regularExpression)
        // Every `pinglass_…` token is a metric (no function or label is so named); `up` where
        // it selects series.
        let names = DocCitations.groups(DocCitations.regex(#"(?<![A-Za-z0-9_:])(pinglass_[A-Za-z0-9_:]+|up(?=\s*\{))"#),
                                        in: unquoted).compactMap { $0[1] }
        return Set(names)
    }

    /// `label="value"` matchers of an expression.
    static func matchers(_ label: String, in expr: String) -> Set<String> {
        Set(DocCitations.groups(DocCitations.regex(#"\b\#(label)="([^"]*)""#), in: expr).compactMap { $0[1] })
    }

    /// Every expression of the rules and the dashboard: (where, expr).
    func expressions() throws -> [(String, String)] {
        let rules = try XCTUnwrap(try yaml(root + "/deploy/pinglass-alerts.yml") as? [String: Any])
        var out: [(String, String)] = []
        for group in try XCTUnwrap(rules["groups"] as? [[String: Any]]) {
            for rule in try XCTUnwrap(group["rules"] as? [[String: Any]]) {
                out.append(("rule \(rule["alert"] ?? "?")", try XCTUnwrap(rule["expr"] as? String)))
            }
        }
        let dashboard = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/deploy/grafana-dashboard.json"))) as? [String: Any])
        for panel in try XCTUnwrap(dashboard["panels"] as? [[String: Any]]) where panel["type"] as? String != "row" {
            let targets = try XCTUnwrap(panel["targets"] as? [[String: Any]], "panel \(panel["title"] ?? "?") has no targets")
            XCTAssertFalse(targets.isEmpty)
            for t in targets { out.append(("panel \(panel["title"] ?? "?")", try XCTUnwrap(t["expr"] as? String))) }
        }
        return out
    }

    func testEveryMetricTheRulesAndTheDashboardReadIsExported() throws {
        let exported = try exportedNames()
        XCTAssertTrue(exported.contains("pinglass_http_request_duration_seconds_bucket"))
        let exprs = try expressions()
        XCTAssertGreaterThan(exprs.count, 25, "found too few expressions: the files were not read")
        let routes = Set(try RequestMetrics.forApp().rows.map(\.route))
        let queues = Set(DatabaseMetrics.queues.map(\.table))
        let sources = try DocCitations.scannedFiles(root: root).filter { $0.hasPrefix("Sources/") && $0.hasSuffix(".swift") }
            .map { try String(contentsOfFile: root + "/" + $0, encoding: .utf8) }.joined(separator: "\n")
        for (place, expr) in exprs {
            let used = Self.metrics(in: expr)
            XCTAssertFalse(used.filter { $0.hasPrefix("pinglass_") }.isEmpty, "\(place) reads no pinglass metric: \(expr)")
            XCTAssertEqual(used.subtracting(exported).subtracting(Self.prometheusOwn).sorted(), [], "\(place): not in /metrics")
            XCTAssertEqual(Self.matchers("route", in: expr).subtracting(routes).sorted(), [], "\(place): no such route")
            XCTAssertEqual(Self.matchers("queue", in: expr).subtracting(queues).sorted(), [], "\(place): no such queue")
            for name in Self.matchers("name", in: expr) {
                XCTAssertTrue(sources.contains("\"\(name)\""), "\(place): no counter \(name) is counted in Sources")
            }
        }
    }

    /// The extraction finds what it must, so the check above can fail.
    func testMetricExtraction() {
        XCTAssertEqual(Self.metrics(in: #"sum(rate(pinglass_x_total{route="/a",status=~"5.."}[5m])) / sum(rate(pinglass_x_total[5m])) > 0.05"#),
                       ["pinglass_x_total"])
        XCTAssertEqual(Self.metrics(in: #"up{job="pinglass"} == 0 or pinglass_database_up == 0"#), ["up", "pinglass_database_up"])
        XCTAssertEqual(Self.metrics(in: #"time() - max by (duty) (pinglass_worker_typo{duty!~"prune"}) > 300"#), ["pinglass_worker_typo"])
        XCTAssertEqual(Self.metrics(in: "min(pinglass_database_up)"), ["pinglass_database_up"])
        XCTAssertEqual(Self.matchers("route", in: #"x{route="/api/payment/webhook",status="403"}"#), ["/api/payment/webhook"])
    }

    /// Each alert required is there, and names its runbook entry and its admin page.
    func testEveryRequiredAlertExistsWithItsRunbookEntryAndAdminPage() throws {
        let rules = try XCTUnwrap(try yaml(root + "/deploy/pinglass-alerts.yml") as? [String: Any])
        let anchors = try DocCitations.anchors(docsDirectory: root + "/docs")["runbook.md"] ?? []
        var names: [String] = []
        for group in try XCTUnwrap(rules["groups"] as? [[String: Any]]) {
            for rule in try XCTUnwrap(group["rules"] as? [[String: Any]]) {
                let name = try XCTUnwrap(rule["alert"] as? String)
                names.append(name)
                let notes = try XCTUnwrap(rule["annotations"] as? [String: String], name)
                let runbook = try XCTUnwrap(notes["runbook"], name)
                XCTAssertTrue(runbook.hasPrefix("docs/runbook.md#"), name)
                XCTAssertTrue(anchors.contains(String(runbook.dropFirst("docs/runbook.md#".count))), "\(name): \(runbook) has no anchor")
                XCTAssertTrue(try XCTUnwrap(notes["admin_page"], name).hasPrefix("https://pinglass.example.com/admin"), name)
                XCTAssertNotNil(notes["summary"], name)
            }
        }
        XCTAssertEqual(Set(Self.requiredAlerts).subtracting(names).sorted(), [])
        XCTAssertEqual(names.count, Set(names).count, "alert names are unique")
    }

    func testTheDashboardIsAnImportableGrafanaDashboard() throws {
        let d = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/deploy/grafana-dashboard.json"))) as? [String: Any])
        XCTAssertEqual(d["uid"] as? String, "pinglass-overview")
        let inputs = try XCTUnwrap(d["__inputs"] as? [[String: Any]])
        XCTAssertEqual(inputs.first?["name"] as? String, "DS_PROMETHEUS")
        let panels = try XCTUnwrap(d["panels"] as? [[String: Any]])
        XCTAssertEqual(panels.compactMap { $0["id"] as? Int }.count, panels.count)
        XCTAssertEqual(Set(panels.compactMap { $0["id"] as? Int }).count, panels.count, "panel ids are unique")
        let titles = panels.compactMap { $0["title"] as? String }
        for wanted in ["Requests by route", "Latency p95 by route", "Queue depth", "Jobs by status", "Payments by status",
                       "Refunds", "Since each duty's last pass"] {
            XCTAssertTrue(titles.contains(wanted), wanted)
        }
        for p in panels where p["type"] as? String != "row" {
            let ds = try XCTUnwrap(p["datasource"] as? [String: String], "\(p["title"] ?? "?")")
            XCTAssertEqual(ds["uid"], "${DS_PROMETHEUS}")
        }
    }
}
