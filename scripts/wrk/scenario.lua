-- One wrk script for every load scenario, chosen by BENCH_SCENARIO:
--   availability, day_sheet, book, lookup, mixed (80/15/5 of the first
--   three) against kluis's /graphql; base_availability, base_day_sheet,
--   base_lookup_token, base_lookup_plaintext against `kluis-bench baseline`.
-- Requests are spread over the data set described by the fixture that
-- `kluis-bench seed` wrote (BENCH_FIXTURE). An answer counts as an error
-- when it is not HTTP 200 or carries GraphQL `errors`; refusals under load
-- (503, RATE_LIMITED) are also counted on their own. done() appends the
-- figures as shell assignments to BENCH_RESULTS, prefixed by BENCH_NAME.

local scenario = os.getenv("BENCH_SCENARIO") or "availability"
local fixture = dofile(os.getenv("BENCH_FIXTURE"))
local scenarios_dir = os.getenv("BENCH_SCENARIOS") or "bench/scenarios"
local staff_token = os.getenv("BENCH_STAFF_TOKEN") or ""
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local booking_offset = tonumber(os.getenv("BENCH_BOOKING_OFFSET") or "0")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "2")

local function read_query(name)
  local file = assert(io.open(scenarios_dir .. "/" .. name .. ".graphql", "r"))
  local text = file:read("*a")
  file:close()
  -- One line, JSON-safe: the documents hold no quotes or backslashes.
  return (text:gsub("%s+", " "))
end

local queries = {
  availability = read_query("availability"),
  day_sheet = read_query("day_sheet"),
  book = read_query("book"),
  lookup = read_query("lookup"),
}

local venue_count = #fixture.venues
local day = 86400

local function date_of(epoch)
  return os.date("!%Y-%m-%d", epoch)
end

local function graphql(query, variables, token)
  local headers = { ["Content-Type"] = "application/json" }
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  local body = '{"query":"' .. query .. '","variables":' .. variables .. '}'
  return wrk.format("POST", "/graphql", headers, body)
end

-- A venue and a coming date: availability is asked about the future.
local function coming_day()
  local venue = fixture.venues[math.random(venue_count)]
  local days_ahead = math.random(0, 30)
  return venue, date_of(os.time() + days_ahead * day)
end

-- A venue and a date inside the seeded span: a full day sheet.
local function seeded_day()
  local venue = fixture.venues[math.random(venue_count)]
  local span_days = math.floor((fixture.last_epoch - fixture.first_epoch) / day)
  return venue, date_of(fixture.first_epoch + math.random(1, math.max(1, span_days - 1)) * day)
end

-- A seeded guest and the venue they belong to.
local function seeded_guest()
  local n = math.random(0, fixture.guests - 1)
  local venue = fixture.venues[math.floor(n / fixture.guests_per_venue) % venue_count + 1]
  return venue, "guest" .. n .. "@bench.example"
end

-- Set by setup() through thread:set, which writes globals.
thread_id = 0
local booked = 0

-- The i-th booking of the run goes to venue i % V, then resource and slot
-- in turn, so that no two bookings of the run compete for one slot.
local function next_booking()
  local i = booking_offset + booked * thread_count + thread_id
  booked = booked + 1
  local venue_index = i % venue_count + 1
  local venue = fixture.venues[venue_index]
  local j = math.floor(i / venue_count)
  local resource = venue.resources[j % #venue.resources + 1]
  local starts = fixture.booking_starts[venue_index]
  local start = starts[math.floor(j / #venue.resources) % #starts + 1]
  local input = string.format(
    '{"venueId":"%s","resourceId":"%s","startsAt":"%s","partySize":2,'
      .. '"noticeVersion":1,"locale":"en","guest":{"name":"Bench Guest %d",'
      .. '"email":"booking-%s-%d@bench.example"},"consents":["NEWSLETTER"],'
      .. '"idempotencyKey":"bench-%s-%d"}',
    venue.id, resource, os.date("!%Y-%m-%dT%H:%M:%SZ", start), i, run, i, run, i)
  local variables = string.format('{"input":%s}', input)
  return graphql(queries.book, variables, fixture.partner_key)
end

-- The baseline's lookup of a seeded guest, through `kind` (token or
-- plaintext).
local function base_lookup(kind)
  local venue, email = seeded_guest()
  return wrk.format("GET", "/lookup/" .. kind .. "?venue=" .. venue.id .. "&email=" .. email)
end

local builders = {
  availability = function()
    local venue, date = coming_day()
    return graphql(queries.availability,
      string.format('{"venue":"%s","date":"%s"}', venue.id, date))
  end,
  day_sheet = function()
    local venue, date = seeded_day()
    return graphql(queries.day_sheet,
      string.format('{"venue":"%s","date":"%s"}', venue.id, date), staff_token)
  end,
  book = next_booking,
  lookup = function()
    local venue, email = seeded_guest()
    return graphql(queries.lookup,
      string.format('{"venue":"%s","email":"%s"}', venue.id, email), staff_token)
  end,
  base_availability = function()
    local venue, date = coming_day()
    return wrk.format("GET", "/availability?venue=" .. venue.id .. "&date=" .. date)
  end,
  base_day_sheet = function()
    local venue, date = seeded_day()
    return wrk.format("GET", "/day-sheet?venue=" .. venue.id .. "&date=" .. date)
  end,
  base_lookup_token = function() return base_lookup("token") end,
  base_lookup_plaintext = function() return base_lookup("plaintext") end,
}

builders.mixed = function()
  local pick = math.random(100)
  if pick <= 80 then
    return builders.availability()
  elseif pick <= 95 then
    return builders.day_sheet()
  end
  return next_booking()
end

local build = assert(builders[scenario], "unknown BENCH_SCENARIO " .. scenario)

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_id)
  errors, refused, slot_taken, first_error = 0, 0, 0, ""
end

function request()
  return build()
end

function response(status, headers, body)
  if status == 503 or status == 429 then
    refused = refused + 1
    errors = errors + 1
  elseif status ~= 200 then
    errors = errors + 1
  elseif body:find('"errors"', 1, true) then
    errors = errors + 1
    if body:find("RATE_LIMITED", 1, true) then
      refused = refused + 1
    elseif body:find("SLOT_TAKEN", 1, true) then
      slot_taken = slot_taken + 1
    end
    if first_error == "" then
      first_error = body:sub(1, 300)
    end
  end
end

function done(summary, latency, requests)
  local failed, shed, taken, sample = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("errors")
    shed = shed + thread:get("refused")
    taken = taken + thread:get("slot_taken")
    if sample == "" then
      sample = thread:get("first_error")
    end
  end
  local socket = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  local seconds = summary.duration / 1e6
  local name = os.getenv("BENCH_NAME") or scenario
  local out = io.open(os.getenv("BENCH_RESULTS") or "/dev/stdout", "a")
  out:write(string.format(
    "%s_requests=%d\n%s_rps=%.0f\n%s_p50=%.2f\n%s_p99=%.2f\n%s_max=%.2f\n"
      .. "%s_errors=%d\n%s_refused=%d\n%s_slot_taken=%d\n%s_socket_errors=%d\n",
    name, summary.requests, name, summary.requests / seconds,
    name, latency:percentile(50) / 1000, name, latency:percentile(99) / 1000,
    name, latency.max / 1000,
    name, failed + socket, name, shed, name, taken, name, socket))
  out:close()
  if sample ~= "" then
    io.stderr:write(name .. ": first error answer: " .. sample .. "\n")
  end
end
