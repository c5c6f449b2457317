// fastcgi-echo: a test fixture, the FastCGI pool (real master, real workers, libfcgi) with a
// handler that sends the request's header fields back, so a test can see what survived the
// worker's reading of the params and its writing of the answer. Never deployed.
#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import HTTPCore

let usage = """
    USAGE: fastcgi-echo --socket PATH [--workers N] [--socket-mode OCTAL]

    Answers every request 200 with one `X-Echo-<name>` field per request header field (in
    the order received, repeated names kept) and one `Set-Cookie` field per `Cookie` field.
    """

let options = CommandLineOptions(program: "fastcgi-echo", usage: usage)
var pool = Pool(configuration: options.poolConfiguration()) {
    { request in
        var response = Response.text("echo")
        for field in request.headers {
            response.headers.append("X-Echo-" + field.name.canonicalName, field.value)
        }
        for cookie in request.headerValues("cookie") { response.headers.append("Set-Cookie", cookie) }
        return response
    }
}
exit(pool.run())
