import HTTPCore
import PinGlass
import Postgres
import Platform

/// `GET /metrics`: Prometheus text (version 0.0.4) for the operator's scraper. Request
/// counts come from the pool's shared table (`RequestMetrics`), everything else from
/// PostgreSQL (`DatabaseMetrics`), so any worker gives the same answer. No secrets and no
/// per-user labels.
///
/// With the database down it still answers 200: the request counts (5xx included) matter
/// most then, and `pinglass_database_up 0` says why the other families are missing.
///
/// Access is nginx's job (`location = /metrics`, an allow-list). That block matches only the
/// exact path, and the router takes no other (`/metrics/` is a 404 there, see `Router.match`).
enum MetricsRoutes {
    static func metrics(_ ctx: Context) throws -> Response {
        var text = PrometheusText()
        writeRequests(ctx.deps.requestMetrics, into: &text)

        let started = ctx.deps.clock.monotonic()
        var up = 1.0
        do {
            try DatabaseMetrics.read(ctx.db()).write(into: &text)
        } catch let e as PostgresError {
            up = 0
            if e.isUnavailable {
                ctx.log.warning("metrics: database unreachable", metadata: ["error": "\(e)"])
            } else {
                ctx.log.error("metrics: database query failed", metadata: ["error": "\(e)"])
            }
        }
        text.declare("pinglass_database_up", .gauge, "1 if this scrape could read PostgreSQL, 0 if not (the database series are then missing).")
        text.add("pinglass_database_up", [:], up)
        text.declare("pinglass_metrics_query_seconds", .gauge, "Time this scrape spent reading PostgreSQL.")
        text.add("pinglass_metrics_query_seconds", [:], ((ctx.deps.clock.monotonic() - started) * 1e6).rounded() / 1e6)
        return Response(status: 200, contentType: PrometheusText.contentType, body: text.render())
    }

    /// Requests this pool answered, by route template and status. Outside a pool (no shared
    /// table) the family is declared with no samples.
    static func writeRequests(_ metrics: RequestMetrics?, into text: inout PrometheusText) {
        text.declare("pinglass_http_requests_total", .counter,
                     "HTTP requests answered by this pool since it started, by route template and status (nginx's own answers are not counted).")
        for s in metrics?.samples() ?? [] {
            text.add("pinglass_http_requests_total", ["method": s.method, "route": s.route, "status": s.status], Double(s.count))
        }
        text.declare("pinglass_http_request_duration_seconds", .histogram,
                     "Time from the application taking a request to its answer, by route template (nginx's own answers are not timed).")
        for h in metrics?.latencies() ?? [] {
            text.addHistogram("pinglass_http_request_duration_seconds", [("method", h.method), ("route", h.route)],
                              buckets: h.buckets, sum: h.sum)
        }
    }
}
