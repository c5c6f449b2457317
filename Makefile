# The two commands of the README, and a few more. Each script says what it does.
.PHONY: run webapp demo test test-unit test-e2e test-disruptive test-browser stop bench bench-generation bench-refunds bench-delivery build clean

run: webapp     ## install, build, start PostgreSQL + pool + simulator + nginx on :8080
	@bash scripts/run.sh

webapp:         ## the Mini App's gzip copies next to its files (nginx serves them with gzip_static)
	@bash -c 'source scripts/lib.sh && build_webapp'

demo:           ## the whole story on the simulator: photos in the simulated Telegram chat, a refund at the bank (starts `make run` if needed)
	@bash scripts/demo.sh

test: webapp    ## install, build, run every test against throwaway services (the four tiers below), print each tier's time
	@bash scripts/test.sh

test-unit:      ## the unit tier: PostgreSQL at most, tests in parallel
	@bash scripts/test.sh unit

test-e2e: webapp ## the end-to-end tier: nginx, pools, the simulator, tests in parallel
	@bash scripts/test.sh e2e

test-disruptive: ## the tier that crashes processes (3 tests at a time) or stops PostgreSQL (alone)
	@bash scripts/test.sh disruptive

test-browser: webapp ## the browser tier: the Mini App's stories in Debian's chromium (headless, Playwright), screenshots in .run/test/browser
	@bash scripts/test.sh browser

stop:           ## stop what `make run` started
	@bash scripts/stop.sh

bench: webapp   ## measure the pool next to nginx and pgbench (see BENCHMARKS.md)
	@bash bench/run.sh

bench-generation: ## the generation pipeline against the simulated Kie (see BENCHMARKS.md)
	@bash bench/generation.sh

bench-refunds:  ## refunds sent per second with 100 due, against the simulated bank (see BENCHMARKS.md)
	@bash bench/refunds.sh

bench-delivery: ## paid → photos in the simulated chat, and the Telegram rate with 200 chats waiting (see BENCHMARKS.md)
	@bash bench/delivery.sh

build:
	swift build -c release

clean:          ## stop what `make run` started, then remove builds and local state
	@bash scripts/stop.sh
	rm -rf .build .run
