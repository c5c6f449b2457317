// swift-tools-version:6.0
import PackageDescription

// PinGlass: a FastCGI pool behind nginx plus cron commands, sharing one domain library.
// C libraries come from Debian (-dev packages); pkg-config finds their headers.
let package = Package(
    name: "PinGlass",
    products: [
        .executable(name: "pinglass-fcgi", targets: ["pinglass-fcgi"]),
        .executable(name: "pinglass", targets: ["pinglass"]),
        .executable(name: "pinglass-sim", targets: ["pinglass-sim"]),
        .library(name: "PinGlass", targets: ["PinGlass"]),
    ],
    // Each range holds the version this project is built and tested with, up to the next
    // minor release, so a resolve on another machine picks no untried API. Package.resolved
    // is not kept: these machines' package copies carry commit ids that differ from upstream.
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", .upToNextMinor(from: "1.16.2")),
        .package(url: "https://github.com/apple/swift-argument-parser", .upToNextMinor(from: "1.8.2")),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", .upToNextMinor(from: "2.0.1")),
        .package(url: "https://github.com/apple/swift-http-types", .upToNextMinor(from: "1.8.0")),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", .upToNextMinor(from: "2.1.1")),
    ],
    targets: [
        // System libraries (Debian: libfcgi-dev, libpq-dev, libcurl4-openssl-dev, libssl-dev).
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Typed wrappers for the variadic libcurl calls Swift cannot make (HTTPClient's).
        .target(name: "CCurlShims", dependencies: ["CCurl"]),
        // Atomics on a counter table in shared memory (SharedCounters'): libc only, no libcurl.
        .target(name: "CSharedCounters"),

        // Generic layers: they know nothing of PinGlass.
        .target(name: "JSON"),  // a JSON value that keeps key order and numbers' text
        .target(name: "LibCrypto", dependencies: ["COpenSSL"]),  // hashes, HMAC, randomness
        .target(name: "Platform"),  // libc: environment, time, files, processes, networks
        .target(name: "Postgres", dependencies: [
            "CLibPQ", "Platform", "LibCrypto", .product(name: "Logging", package: "swift-log"),
        ]),
        // Request/Response values (headers as swift-http-types' HTTPFields): no transport, no C library.
        .target(name: "HTTPCore", dependencies: ["JSON", "WebURL", .product(name: "HTTPTypes", package: "swift-http-types")]),
        .target(name: "FastCGI", dependencies: ["CFastCGI", "HTTPCore", .product(name: "HTTPTypes", package: "swift-http-types")]),
        .target(name: "WebURL"),  // http(s) URL parts and the one redaction rule for logs
        .target(name: "HTTPClient", dependencies: ["CCurl", "CCurlShims", "WebURL", .product(name: "HTTPTypes", package: "swift-http-types")]),
        .target(name: "SharedCounters", dependencies: ["CSharedCounters"]),  // counters shared across fork

        // What the domain and the simulator share: the configuration, and the providers' wire
        // formats (signatures, request and answer types), without any payment or job logic.
        .target(name: "PinGlassConfig", dependencies: ["Platform", "WebURL"]),
        .target(name: "ProviderWire", dependencies: ["JSON", "LibCrypto", "WebURL"]),

        // The domain library, shared by the pool and the CLI. It reaches the providers only
        // through its own protocols (BankAPI, KieAPI, TelegramAPI, MediaStore, ResultDownloader).
        .target(name: "PinGlass", dependencies: [
            "Postgres", "WebURL", "SharedCounters", "JSON", "LibCrypto", "Platform",
            "PinGlassConfig", "ProviderWire", .product(name: "Logging", package: "swift-log"),
        ]),
        // The live implementations of the domain's provider protocols over libcurl (T-Bank,
        // Kie, Telegram, S3 and file storage, result downloads) and the composition of live
        // `Dependencies` the executables and tests build.
        .target(name: "Providers", dependencies: [
            "PinGlass", "PinGlassConfig", "ProviderWire", "Postgres", "HTTPClient", "WebURL", "JSON", "LibCrypto", "Platform",
        ]),
        // The HTTP API over the domain: router, route groups, middleware, `*Routes` handlers.
        .target(name: "PinGlassWeb", dependencies: [
            "PinGlass", "HTTPCore", "Postgres", "WebURL", "JSON", "LibCrypto", "Platform", "PinGlassConfig", "ProviderWire",
            .product(name: "Logging", package: "swift-log"), .product(name: "Mustache", package: "swift-mustache"),
        ]),

        .executableTarget(name: "pinglass-fcgi", dependencies: [
            "PinGlass", "PinGlassWeb", "Providers", "PinGlassConfig", "Platform", "Postgres", "FastCGI", "HTTPCore",
        ]),
        .executableTarget(name: "pinglass", dependencies: [
            "PinGlass", "Providers", "PinGlassConfig", "ProviderWire", "Postgres", "JSON", "LibCrypto", "Platform",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The simulator plays the providers: configuration and wire formats, never the domain.
        .executableTarget(name: "pinglass-sim", dependencies: [
            "PinGlassConfig", "ProviderWire", "FastCGI", "HTTPCore", "HTTPClient", "WebURL", "Postgres", "JSON", "LibCrypto", "Platform",
        ]),

        // Tests. One testing target (throwaway databases, running stacks, one client for both
        // transports, fixtures) and one test target per tier; `make test-unit`, `test-e2e`,
        // `test-disruptive` and `test-browser` each run one of them (scripts/test.sh checks every suite is in exactly one).
        .target(name: "PinGlassTesting", dependencies: [
            "PinGlass", "PinGlassWeb", "Providers", "PinGlassConfig", "ProviderWire", "Postgres", "HTTPClient", "HTTPCore",
            "WebURL", "JSON", "LibCrypto", "Platform", .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/PinGlassTesting"),
        // PostgreSQL at most: no nginx, pool or simulator (Stack refuses to start in this tier).
        .testTarget(name: "UnitTests", dependencies: [
            "PinGlass", "PinGlassWeb", "Providers", "PinGlassTesting", "HTTPCore", "HTTPClient", "WebURL", "SharedCounters",
            "PinGlassConfig", "ProviderWire", "Postgres", "JSON", "LibCrypto", "Platform",
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        // Real nginx, pools, the simulator and the CLI, each test on its own ports and database.
        .testTarget(name: "EndToEndTests", dependencies: [
            "PinGlass", "PinGlassWeb", "Providers", "PinGlassTesting", "PinGlassConfig", "ProviderWire", "Postgres", "HTTPClient",
            "WebURL", "JSON", "LibCrypto", "Platform", "HTTPCore",
        ]),
        // Suites that stop the shared PostgreSQL or crash processes mid-work (scripts/test.sh
        // runs the PostgreSQL stoppers one at a time).
        .testTarget(name: "DisruptiveTests", dependencies: [
            "PinGlass", "PinGlassWeb", "Providers", "PinGlassTesting", "PinGlassConfig", "ProviderWire", "Postgres", "HTTPClient",
            "WebURL", "JSON", "LibCrypto", "Platform", "HTTPCore",
        ]),
        // The Mini App in a real browser: Debian's chromium driven headless by Playwright stories
        // (Tests/Browser/*.py) against a running stack and the duties (scripts/test.sh tier `browser`).
        .testTarget(name: "BrowserTests", dependencies: [
            "PinGlassTesting", "Postgres", "HTTPClient", "JSON", "Platform",
        ]),
        // A pool whose handler echoes the request's header fields (FastCGIFieldsTests).
        .executableTarget(name: "fastcgi-echo", dependencies: ["FastCGI", "HTTPCore"], path: "Tests/FastCGIEcho"),
    ]
)
