using System.Text;
using Hive.Controller.Sandboxes;
using Hive.Protos.V1;
using Google.Protobuf;

namespace Hive.Controller.Api;

/// <summary><c>POST /api/v1/hiveboxes/:id/exec</c>: runs <c>/bin/sh -c command</c> in the sandbox.</summary>
internal static class ExecEndpoints
{
    private const int MaxCommandBytes = 256 * 1024;

    /// <summary>Extra time for the RPC beyond the command's own timeout (spawn, kill, output transfer).</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(30);

    public static void MapExecEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/hiveboxes/{id}/exec", async (string id, HttpContext http, SandboxManager manager, Sandboxes.Store.SandboxStore store, Events.ControllerSpools spools) =>
        {
            var name = RouteNames.Require(id);
            var body = await ApiJson.ReadBodyAsync<ExecRequestBody>(http.Request, new ExecRequestBody());
            var request = Validate(body);
            var rpcTimeout = request.TimeoutMs == 0 ? (TimeSpan?)null : TimeSpan.FromMilliseconds(request.TimeoutMs) + Grace;
            store.Get(name); // 404 before anything is recorded

            // On record before it runs: a command that cannot be audited does not run.
            var exec = new ExecEvent { Id = Guid.NewGuid().ToString("N")[..16], Command = Summarise(request.Command), Cwd = request.Cwd, Via = "api" };
            if (!spools.TryRecord(name, new Event { Kind = "exec.started", Exec = exec }))
            {
                throw new ApiException(StatusCodes.Status503ServiceUnavailable, $"sandbox '{name}': the command cannot be recorded in the event log, so it was not run");
            }

            ExecResponse response;
            try
            {
                response = await manager.CallAsync(name, c => c.ExecAsync(name, request, rpcTimeout, http.RequestAborted));
            }
            catch (Exception ex)
            {
                var failed = exec.Clone();
                failed.ExitCode = -1;
                failed.Error = ex.Message;
                spools.TryRecord(name, new Event { Kind = "exec.finished", Exec = failed });
                throw;
            }

            var finished = exec.Clone();
            finished.ExitCode = response.ExitCode;
            finished.DurationMs = (long)(response.DurationUs / 1000);
            finished.StdoutBytes = response.Stdout.Length;
            finished.StderrBytes = response.Stderr.Length;
            finished.TimedOut = response.TimedOut;
            finished.OomKilled = response.OomKilled;
            spools.TryRecord(name, new Event { Kind = "exec.finished", Exec = finished });
            store.IncrementCommands(name);
            return Results.Json(
                new ExecResult(
                    response.ExitCode,
                    Encoding.UTF8.GetString(response.Stdout.Span),
                    Encoding.UTF8.GetString(response.Stderr.Span),
                    (long)(response.DurationUs / 1000),
                    response.TimedOut,
                    response.OomKilled,
                    response.Signal == 0 ? null : response.Signal,
                    response.StdoutTruncated,
                    response.StderrTruncated),
                ApiJson.Options);
        });
    }

    /// <summary>Commands up to 16 KiB go on record whole; longer ones are cut (the full text is in the request log of the caller).</summary>
    private static string Summarise(string command) => command.Length <= 16 * 1024 ? command : command[..(16 * 1024)] + $"… ({command.Length} characters)";

    private static ExecRequest Validate(ExecRequestBody body)
    {
        if (string.IsNullOrEmpty(body.Command))
        {
            throw ApiException.BadRequest("'command' is required");
        }

        if (Encoding.UTF8.GetByteCount(body.Command) > MaxCommandBytes)
        {
            throw ApiException.BadRequest($"'command' is longer than {MaxCommandBytes} bytes; upload a script instead");
        }

        if (body.Command.Contains('\0', StringComparison.Ordinal))
        {
            throw ApiException.BadRequest("'command' must not contain NUL characters");
        }

        var timeout = body.Timeout ?? 0;
        if (double.IsNaN(timeout) || timeout < 0 || timeout > 86400)
        {
            throw ApiException.BadRequest("'timeout' must be between 0 (none) and 86400 seconds");
        }

        if (body.Cwd is { } cwd && (!cwd.StartsWith('/') || cwd.Contains('\0', StringComparison.Ordinal)))
        {
            throw ApiException.BadRequest("'cwd' must be an absolute path");
        }

        var request = new ExecRequest
        {
            Command = body.Command,
            Cwd = body.Cwd ?? string.Empty,
            TimeoutMs = (uint)Math.Ceiling(timeout * 1000),
            Stdin = body.Stdin is null ? ByteString.Empty : ByteString.CopyFromUtf8(body.Stdin),
        };
        foreach (var (key, value) in body.Env ?? [])
        {
            if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
            {
                throw ApiException.BadRequest($"invalid environment variable name '{key}'");
            }

            request.Env[key] = value;
        }

        return request;
    }
}
