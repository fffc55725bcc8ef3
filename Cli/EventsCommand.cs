using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Hive.Client;

namespace Hive.Cli;

/// <summary><c>hive events NAME [-f]</c>: a sandbox's audit trail, one readable line per event (or its JSON).</summary>
internal static class EventsCommand
{
    public static Command Build(Func<ParseResult, HiveClient> client, Option<bool> json)
    {
        var name = new Argument<string>("name") { Description = "Sandbox name (a destroyed sandbox's events stay readable until retention removes them)" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing events as they happen (reconnects without losing or repeating any)" };
        var kinds = new Option<string[]>("--kind", "-k") { Description = "Only these kinds, by prefix: fs, fs.write, exec, net.http, lifecycle, ... (repeatable or comma-separated)" };
        var decision = new Option<string?>("--decision") { Description = "Only events with this decision: allow, deny (deny also matches deny-ro)" };
        var since = new Option<ulong?>("--since") { Description = "Start after this sequence number" };
        var command = new Command("events", "Show what happened in a sandbox: file operations, commands, network, lifecycle") { name, follow, kinds, decision, since, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = client(parse);
            var options = new EventsOptions
            {
                Follow = parse.GetValue(follow),
                Kinds = parse.GetValue(kinds) is { Length: > 0 } k ? [string.Join(',', k)] : null,
                Decision = parse.GetValue(decision) is { Length: > 0 } d ? d : null,
                Since = parse.GetValue(since) is { } s ? checked((long)s) : null,
            };

            // Following, the SDK resumes a dropped stream with Last-Event-ID: nothing lost, nothing twice.
            var raw = parse.GetValue(json);
            await foreach (var e in api.SandboxNamed(parse.GetValue(name)!).EventsAsync(options, ct))
            {
                Print(e.Data.GetRawText(), raw);
            }

            return 0;
        });
        return command;
    }

    private static void Print(string line, bool raw)
    {
        if (raw)
        {
            Console.Out.WriteLine(line);
            return;
        }

        var e = JsonNode.Parse(line)!.AsObject();
        Console.Out.WriteLine(Format(e));
    }

    /// <summary><c>#12 21:05:01.123 fs.write allow /workspace/a.txt 12 B 38µs</c>: one line, most telling facts first.</summary>
    public static string Format(JsonObject e)
    {
        string S(string key) => e[key]?.ToString() ?? string.Empty;
        var ts = DateTimeOffset.TryParse(S("ts"), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t.ToLocalTime().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) : S("ts");
        var kind = S("kind");
        var head = $"#{S("seq")} {ts} {kind}" + (S("decision") is { Length: > 0 } d ? " " + d : string.Empty);
        var detail = kind switch
        {
            _ when kind.StartsWith("fs.", StringComparison.Ordinal) =>
                S("path") + (S("target") is { Length: > 0 } target ? " -> " + target : string.Empty) + (S("bytes") is "0" or "" ? string.Empty : $" {S("bytes")} B")
                + (S("errno") is "0" or "" ? string.Empty : $" errno {S("errno")}") + $" {S("duration_us")}µs",
            "artifact.written" => $"{S("path")} {S("size")} B sha256 {S("sha256")}",
            "exec.started" => $"[{S("id")}] {S("command")}" + (S("cwd") is { Length: > 0 } cwd ? $" (in {cwd})" : string.Empty),
            "exec.finished" => $"[{S("id")}] exit {S("exit_code")} in {S("duration_ms")} ms, {S("stdout_bytes")} B out, {S("stderr_bytes")} B err"
                + (S("timed_out") == "true" ? ", timed out" : string.Empty) + (S("oom_killed") == "true" ? ", OOM-killed" : string.Empty) + (S("error") is { Length: > 0 } err ? ", error: " + err : string.Empty),
            "resource.usage" => $"cpu {S("cpu_percent")}%, memory {S("memory_bytes")}/{S("memory_limit_bytes")} B, {S("pids")} pids" + (e.ContainsKey("disk_limit_bytes") ? $", disk {S("disk_bytes")}/{S("disk_limit_bytes")} B" : string.Empty),
            "llm.call" => $"{S("provider")} {S("model")} in {S("input_tokens")} out {S("output_tokens")} tokens, {S("latency_ms")} ms, status {S("status")}",
            "net.dns" => $"{S("dns_type")} {S("host")} " + (e["answers"] is JsonArray { Count: > 0 } answers ? "-> " + string.Join(", ", answers.Select(a => a?.ToString())) : S("decision") == "deny" ? "NXDOMAIN" : "(no records)")
                + Suffix(S("rule"), S("error")),
            "net.connect" => $"{S("protocol")} {(S("host") is { Length: > 0 } h ? h : S("ip"))}:{S("port")}" + Suffix(S("rule"), S("error")),
            "net.http" => $"{S("method")} {S("protocol")}://{S("host")}:{S("port")}{S("path")}{(S("query") is { Length: > 0 } q ? "?" + q : string.Empty)} {S("status")} ({S("bytes_out")}↑ {S("bytes_in")}↓ B, {S("duration_us")}µs)"
                + Suffix(S("rule"), S("error")),
            _ when kind.StartsWith("net.", StringComparison.Ordinal) => $"{S("protocol")} {S("host")}:{S("port")}{S("path")} ({S("bytes_out")}↑ {S("bytes_in")}↓ B)" + Suffix(S("rule"), S("error")),
            _ when kind.StartsWith("policy.", StringComparison.Ordinal) => $"{S("target")} by {S("actor")}: {e["rules"]?.ToJsonString()}",
            _ when kind.StartsWith("lifecycle.", StringComparison.Ordinal) => S("detail") + (S("pid") is { Length: > 0 } pid ? $" (pid {pid})" : string.Empty),
            _ => string.Empty,
        };
        return detail.Length > 0 ? head + " " + detail : head;
    }

    /// <summary>" [rule: error]" — which rule decided, and what went wrong if anything did.</summary>
    private static string Suffix(string rule, string error) =>
        rule.Length == 0 && error.Length == 0 ? string.Empty : $" [{rule}{(rule.Length > 0 && error.Length > 0 ? ": " : string.Empty)}{error}]";
}
