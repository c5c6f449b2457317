import XCTest
import PinGlassTesting
@testable import PinGlass

/// The exposition format (text 0.0.4) as written by `PrometheusText`.
final class PrometheusTextTests: XCTestCase {
    func testFamiliesHaveOneHelpAndOneTypeLineAndTheirSamplesUnderThem() {
        var t = PrometheusText()
        t.declare("a_total", .counter, "A things.")
        t.declare("b", .gauge, "B level.")
        t.add("a_total", ["k": "x"], 1)
        t.add("b", [:], 2)
        t.declare("a_total", .counter, "A things.")     // declared again: nothing changes
        t.add("a_total", ["k": "y"], 3)                 // added after b: still under a_total
        XCTAssertEqual(t.render(), """
            # HELP a_total A things.
            # TYPE a_total counter
            a_total{k="x"} 1
            a_total{k="y"} 3
            # HELP b B level.
            # TYPE b gauge
            b 2

            """)
        let scrape = PrometheusScrape(t.render())
        XCTAssertEqual(scrape.problems, [])
        XCTAssertEqual(scrape.types, ["a_total": "counter", "b": "gauge"])
    }

    func testAFamilyWithNoSamplesStillHasItsHelpAndType() {
        var t = PrometheusText()
        t.declare("empty_total", .counter, "Nothing yet.")
        XCTAssertEqual(t.render(), "# HELP empty_total Nothing yet.\n# TYPE empty_total counter\n")
    }

    func testLabelValuesAreEscapedAndLabelsKeepTheirOrder() {
        var t = PrometheusText()
        t.declare("m", .gauge, "x")
        t.add("m", ["z": #"back\slash"#, "a": #"say "hi""#, "n": "two\nlines", "u": "ünï €"], 1)
        XCTAssertEqual(t.render().split(separator: "\n").last.map(String.init),
                       #"m{z="back\\slash",a="say \"hi\"",n="two\nlines",u="ünï €"} 1"#)
        let scrape = PrometheusScrape(t.render())
        XCTAssertEqual(scrape.problems, [])
        XCTAssertEqual(scrape.samples.count, 1)
    }

    func testHelpEscapesBackslashAndNewlineButNotQuotes() {
        var t = PrometheusText()
        t.declare("h", .gauge, "a \\ b\n\"c\"")
        XCTAssertTrue(t.render().hasPrefix(#"# HELP h a \\ b\n"c""# + "\n"), t.render())
    }

    func testValues() {
        XCTAssertEqual(PrometheusText.format(0), "0")
        XCTAssertEqual(PrometheusText.format(-0.0), "0")
        XCTAssertEqual(PrometheusText.format(42), "42")
        XCTAssertEqual(PrometheusText.format(1_732_900_000), "1732900000")
        XCTAssertEqual(PrometheusText.format(0.25), "0.25")
        XCTAssertEqual(PrometheusText.format(1_732_900_000.5), "1732900000.5")
        XCTAssertEqual(PrometheusText.format(1e20), "1e+20")
        XCTAssertEqual(PrometheusText.format(.infinity), "+Inf")
        XCTAssertEqual(PrometheusText.format(-.infinity), "-Inf")
        XCTAssertEqual(PrometheusText.format(.nan), "NaN")
        XCTAssertEqual(Double("1e+20"), 1e20, "what Prometheus (Go's ParseFloat) reads back")
    }

    func testNames() {
        XCTAssertTrue(PrometheusText.isValidName("pinglass_http_requests_total", colons: true))
        XCTAssertTrue(PrometheusText.isValidName("job:rate5m", colons: true))
        XCTAssertFalse(PrometheusText.isValidName("job:rate5m", colons: false))
        XCTAssertFalse(PrometheusText.isValidName("9lives", colons: true))
        XCTAssertFalse(PrometheusText.isValidName("with-dash", colons: true))
        XCTAssertFalse(PrometheusText.isValidName("", colons: true))
    }

    /// The checker the other metrics tests rely on finds what it must.
    func testTheScrapeCheckerFindsBrokenText() {
        let broken = """
            # TYPE a counter
            a 1
            # TYPE a counter
            b 2
            a{x="1"} nope
            """
        XCTAssertEqual(PrometheusScrape(broken).problems,
                       ["TYPE twice: a", "sample outside its family: b 2", #"bad sample: a{x="1"} nope"#])
    }

    func testHistogramSeriesAndTheirChecks() {
        var t = PrometheusText()
        t.declare("d_seconds", .histogram, "Durations.")
        t.addHistogram("d_seconds", [("route", "/a/{id}")], buckets: [(0.5, 1), (1, 3), (.infinity, 4)], sum: 2.25)
        XCTAssertEqual(t.render(), """
            # HELP d_seconds Durations.
            # TYPE d_seconds histogram
            d_seconds_bucket{route="/a/{id}",le="0.5"} 1
            d_seconds_bucket{route="/a/{id}",le="1"} 3
            d_seconds_bucket{route="/a/{id}",le="+Inf"} 4
            d_seconds_sum{route="/a/{id}"} 2.25
            d_seconds_count{route="/a/{id}"} 4

            """)
        XCTAssertEqual(PrometheusScrape(t.render()).problems, [])
        let broken = """
            # TYPE d_seconds histogram
            d_seconds_bucket{le="0.5"} 3
            d_seconds_bucket{le="1"} 2
            d_seconds_bucket{le="+Inf"} 4
            d_seconds_count 5
            """
        XCTAssertEqual(PrometheusScrape(broken).problems.sorted(),
                       ["+Inf bucket is not the count: d_seconds_count", "buckets not cumulative: d_seconds_count"])
        XCTAssertEqual(PrometheusScrape("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n").problems,
                       ["no +Inf bucket: h_count"])
    }
}
