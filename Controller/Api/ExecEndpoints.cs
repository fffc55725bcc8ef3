using System.Text;
using Hive.Controller.Api.Access;
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
            spools.RequireBudget(name); // 507: a command that could not be recorded does not run

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
            finished.StdoutBytes = (long)response.StdoutBytes;
            finished.StderrBytes = (long)response.StderrBytes;
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

    /// <summary>
    /// <c>POST /api/v1/hiveboxes/:id/exec/stream</c>: the same body as exec; the answer is JSON lines
    /// as things happen — <c>started</c> (with the id for stdin), <c>stdout</c>/<c>stderr</c> chunks
    /// (base64), <c>exit</c>. Closing the response kills the command. Stdin: <c>POST
    /// …/exec/:execId/stdin</c> (raw bytes; <c>?close=true</c> ends input).
    /// </summary>
    public static void MapExecStreamEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/hiveboxes/{id}/exec/stream", async (string id, HttpContext http, SandboxManager manager, Sandboxes.Store.SandboxStore store, Sandboxes.Sbxd.SbxdClients clients, Events.ControllerSpools spools) =>
        {
            var name = RouteNames.Require(id);
            var body = await ApiJson.ReadBodyAsync<ExecRequestBody>(http.Request, new ExecRequestBody());
            var request = Validate(body);
            store.GetRunning(name);
            spools.RequireBudget(name);

            var exec = new ExecEvent { Id = Guid.NewGuid().ToString("N")[..16], Command = Summarise(request.Command), Cwd = request.Cwd, Via = "api-stream" };
            if (!spools.TryRecord(name, new Event { Kind = "exec.started", Exec = exec }))
            {
                throw new ApiException(StatusCodes.Status503ServiceUnavailable, $"sandbox '{name}': the command cannot be recorded in the event log, so it was not run");
            }

            var finished = exec.Clone();
            finished.ExitCode = -1;
            http.Response.ContentType = "application/x-ndjson";
            http.Response.Headers["X-Accel-Buffering"] = "no";
            try
            {
                await foreach (var e in clients.ExecStreamAsync(name, request, http.RequestAborted))
                {
                    var line = e.EventCase switch
                    {
                        ExecStreamEvent.EventOneofCase.Started => new System.Text.Json.Nodes.JsonObject { ["type"] = "started", ["id"] = e.Started.Id, ["pid"] = e.Started.Pid },
                        ExecStreamEvent.EventOneofCase.Stdout => new System.Text.Json.Nodes.JsonObject { ["type"] = "stdout", ["data"] = e.Stdout.ToBase64() },
                        ExecStreamEvent.EventOneofCase.Stderr => new System.Text.Json.Nodes.JsonObject { ["type"] = "stderr", ["data"] = e.Stderr.ToBase64() },
                        ExecStreamEvent.EventOneofCase.Exit => Exit(e.Exit, finished),
                        _ => null,
                    };
                    if (line is not null)
                    {
                        await http.Response.WriteAsync(line.ToJsonString() + "\n", http.RequestAborted);
                        await http.Response.Body.FlushAsync(http.RequestAborted);
                    }
                }
            }
            catch (Hive.Wire.RpcException ex) when (!http.Response.HasStarted)
            {
                finished.Error = ex.Message;
                spools.TryRecord(name, new Event { Kind = "exec.finished", Exec = finished });
                throw new ApiException(ex.StatusCode == Hive.Wire.StatusCode.Unavailable ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status400BadRequest, ex.Detail);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or Hive.Wire.RpcException)
            {
                finished.Error = http.RequestAborted.IsCancellationRequested ? "the client closed the stream; the command was killed" : ex.Message;
            }

            spools.TryRecord(name, new Event { Kind = "exec.finished", Exec = finished });
            store.IncrementCommands(name);
        });

        app.MapPost("/api/v1/hiveboxes/{id}/exec/{execId}/stdin", async (string id, string execId, HttpContext http, Sandboxes.Store.SandboxStore store, Sandboxes.Sbxd.SbxdClients clients) =>
        {
            var name = RouteNames.Require(id);
            store.Get(name);
            if (execId.Length is 0 or > 64 || !execId.All(char.IsAsciiHexDigitLower))
            {
                throw ApiException.BadRequest("invalid exec id");
            }

            var close = http.Request.Query["close"].ToString() is "true" or "1";
            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer, http.RequestAborted);
            if (buffer.Length > 16 * 1024 * 1024)
            {
                throw new ApiException(StatusCodes.Status413PayloadTooLarge, "send stdin in chunks of at most 16 MiB");
            }

            try
            {
                await clients.ExecInputAsync(name, new ExecInputRequest { Id = execId, Data = ByteString.CopyFrom(buffer.GetBuffer(), 0, (int)buffer.Length), Close = close }, http.RequestAborted);
            }
            catch (Hive.Wire.RpcException ex) when (ex.StatusCode == Hive.Wire.StatusCode.NotFound)
            {
                throw ApiException.NotFound($"no running command '{execId}' in sandbox '{name}'");
            }
            catch (Hive.Wire.RpcException ex) when (ex.StatusCode == Hive.Wire.StatusCode.FailedPrecondition)
            {
                throw ApiException.Conflict(ex.Detail);
            }

            return Results.NoContent();
        }).AcceptsRawBody(); // stdin is bytes
    }

    private static System.Text.Json.Nodes.JsonObject Exit(ExecResponse exit, ExecEvent finished)
    {
        finished.ExitCode = exit.ExitCode;
        finished.DurationMs = (long)(exit.DurationUs / 1000);
        finished.StdoutBytes = (long)exit.StdoutBytes;
        finished.StderrBytes = (long)exit.StderrBytes;
        finished.TimedOut = exit.TimedOut;
        return new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "exit",
            ["exit_code"] = exit.ExitCode,
            ["duration_ms"] = (long)(exit.DurationUs / 1000),
            ["timed_out"] = exit.TimedOut,
            ["signal"] = exit.Signal == 0 ? null : exit.Signal,
            ["stdout_bytes"] = exit.StdoutBytes,
            ["stderr_bytes"] = exit.StderrBytes,
        };
    }

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
