using System.Text.Json;
using Hive.Controller.Api;
using Hive.Controller.Sandboxes.Config;
using Microsoft.Data.Sqlite;

namespace Hive.Controller.Sandboxes.Store;

/// <summary>
/// Sandboxes in SQLite (WAL). The database is the Controller's memory across restarts: what exists,
/// its configuration, its expiry and counters. Live facts (pids, usage) come from Sbxd.
/// </summary>
internal sealed class SandboxStore
{
    private const int SchemaVersion = 1;
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _pendingCommands = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SandboxRecord> _rows = new(StringComparer.Ordinal);
    private readonly Lock _cacheGate = new();

    public SandboxStore(string databasePath, TimeProvider time)
    {
        _time = time;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        Migrate();
    }

    /// <summary>Inserts a new sandbox; false if the name is taken.</summary>
    public bool TryInsert(SandboxRecord record) => Write(record.Name, () =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO sandboxes (name, config, status, error, created_at, expires_at, commands_executed, ip, id_base)
            VALUES ($name, $config, $status, $error, $created, $expires, $commands, $ip, $id_base)
            ON CONFLICT(name) DO NOTHING
            """;
        Bind(command, record);
        return command.ExecuteNonQuery() == 1;
    });

    public void Update(SandboxRecord record) => Write(record.Name, () =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            UPDATE sandboxes SET config = $config, status = $status, error = $error, created_at = $created,
              expires_at = $expires, ip = $ip, id_base = $id_base WHERE name = $name
            """;
        Bind(command, record);
        return command.ExecuteNonQuery();
    });

    public void SetStatus(string name, string status, string? error) => Write(name, () =>
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE sandboxes SET status = $status, error = $error WHERE name = $name";
        command.Parameters.AddWithValue("$name", name);
        command.Parameters.AddWithValue("$status", status);
        command.Parameters.AddWithValue("$error", (object?)error ?? DBNull.Value);
        return command.ExecuteNonQuery();
    });

    /// <summary>
    /// Counts an exec. Kept in memory and written in batches by <see cref="FlushCommands"/>: a
    /// synchronous SQLite commit (an fsync) per exec would cost more than the exec itself.
    /// </summary>
    public void IncrementCommands(string name) => _pendingCommands.AddOrUpdate(name, 1, static (_, n) => n + 1);

    /// <summary>Writes counted execs to the database (readers see the same total before, during and after).</summary>
    public void FlushCommands()
    {
        foreach (var name in _pendingCommands.Keys)
        {
            if (!_pendingCommands.TryGetValue(name, out var n) || n == 0)
            {
                continue;
            }

            Write(name, () =>
            {
                using var connection = Open();
                using var command = connection.CreateCommand();
                command.CommandText = "UPDATE sandboxes SET commands_executed = commands_executed + $n WHERE name = $name";
                command.Parameters.AddWithValue("$name", name);
                command.Parameters.AddWithValue("$n", n);
                command.ExecuteNonQuery();
                _rows.TryRemove(name, out _);
                return _pendingCommands.AddOrUpdate(name, 0, (_, v) => v - n);
            });
        }
    }

    public bool Delete(string name) => Write(name, () =>
    {
        _pendingCommands.TryRemove(name, out _);
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM sandboxes WHERE name = $name";
        command.Parameters.AddWithValue("$name", name);
        return command.ExecuteNonQuery() == 1;
    });

    /// <summary>
    /// One sandbox. Rows are cached in memory (this process is the database's only writer, and
    /// every write below drops the cached row under the same lock), so the exec path costs no query.
    /// </summary>
    public SandboxRecord? Find(string name)
    {
        if (_rows.TryGetValue(name, out var cached))
        {
            return WithPending(cached);
        }

        lock (_cacheGate)
        {
            using var connection = Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT name, config, status, error, created_at, expires_at, commands_executed, ip, id_base FROM sandboxes WHERE name = $name";
            command.Parameters.AddWithValue("$name", name);
            using var reader = command.ExecuteReader();
            if (!reader.Read())
            {
                return null;
            }

            var row = ReadRow(reader);
            _rows[name] = row;
            return WithPending(row);
        }
    }

    public SandboxRecord Get(string name) => Find(name) ?? throw ApiException.SandboxNotFound(name);

    /// <summary>The sandbox, which must be running: 404 if it does not exist, 409 otherwise.</summary>
    public SandboxRecord GetRunning(string name)
    {
        var record = Get(name);
        return record.Status == LifecycleStatus.Running ? record : throw ApiException.Conflict($"sandbox '{name}' is {record.Status}");
    }

    public IReadOnlyList<SandboxRecord> List()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name, config, status, error, created_at, expires_at, commands_executed, ip, id_base FROM sandboxes ORDER BY created_at, name";
        using var reader = command.ExecuteReader();
        var result = new List<SandboxRecord>();
        while (reader.Read())
        {
            result.Add(Read(reader));
        }

        return result;
    }

    public IReadOnlyList<string> ListExpired()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sandboxes WHERE expires_at <= $now AND status <> 'destroying'";
        command.Parameters.AddWithValue("$now", _time.GetUtcNow().ToUnixTimeMilliseconds());
        using var reader = command.ExecuteReader();
        var result = new List<string>();
        while (reader.Read())
        {
            result.Add(reader.GetString(0));
        }

        return result;
    }

    private static void Bind(SqliteCommand command, SandboxRecord record)
    {
        command.Parameters.AddWithValue("$name", record.Name);
        command.Parameters.AddWithValue("$config", JsonSerializer.Serialize(record.Config, StoreJson.Options));
        command.Parameters.AddWithValue("$status", record.Status);
        command.Parameters.AddWithValue("$error", (object?)record.Error ?? DBNull.Value);
        command.Parameters.AddWithValue("$created", record.CreatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$expires", record.ExpiresAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$commands", record.CommandsExecuted);
        command.Parameters.AddWithValue("$ip", (object?)record.Ip ?? DBNull.Value);
        command.Parameters.AddWithValue("$id_base", record.IdBase is { } idBase ? (long)idBase : DBNull.Value);
    }

    private SandboxRecord Read(SqliteDataReader reader) => WithPending(ReadRow(reader));

    private SandboxRecord WithPending(SandboxRecord record) => _pendingCommands.TryGetValue(record.Name, out var pending)
        ? record with { CommandsExecuted = record.CommandsExecuted + pending }
        : record;

    /// <summary>Runs a write and drops the cached row of <paramref name="name"/>.</summary>
    private T Write<T>(string name, Func<T> write)
    {
        lock (_cacheGate)
        {
            try
            {
                return write();
            }
            finally
            {
                _rows.TryRemove(name, out _);
            }
        }
    }

    private static SandboxRecord ReadRow(SqliteDataReader reader) => new()
    {
        Config = JsonSerializer.Deserialize<SandboxConfig>(reader.GetString(1), StoreJson.Options)!,
        Status = reader.GetString(2),
        Error = reader.IsDBNull(3) ? null : reader.GetString(3),
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
        ExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
        CommandsExecuted = reader.GetInt64(6),
        Ip = reader.IsDBNull(7) ? null : reader.GetString(7),
        IdBase = reader.IsDBNull(8) ? null : (uint)reader.GetInt64(8),
    };

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private void Migrate()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS sandboxes (
              name TEXT PRIMARY KEY,
              config TEXT NOT NULL,
              status TEXT NOT NULL,
              error TEXT,
              created_at INTEGER NOT NULL,
              expires_at INTEGER NOT NULL,
              commands_executed INTEGER NOT NULL DEFAULT 0,
              ip TEXT,
              id_base INTEGER
            );
            PRAGMA user_version = {SchemaVersion};
            """;
        command.ExecuteNonQuery();

        // A database from before user namespaces: the column is added (null: those sandboxes have none).
        using var columns = connection.CreateCommand();
        columns.CommandText = "SELECT COUNT(*) FROM pragma_table_info('sandboxes') WHERE name = 'id_base'";
        if ((long)columns.ExecuteScalar()! == 0)
        {
            using var add = connection.CreateCommand();
            add.CommandText = "ALTER TABLE sandboxes ADD COLUMN id_base INTEGER";
            add.ExecuteNonQuery();
        }
    }
}

internal static class StoreJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.General)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };
}
