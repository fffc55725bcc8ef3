using Microsoft.Data.Sqlite;

namespace Hive.Controller.Analytics;

/// <summary>Analytics samples in the Controller's SQLite database (one row per sample, JSON), so history survives restarts.</summary>
internal sealed class AnalyticsStore
{
    private readonly string _connectionString;

    public AnalyticsStore(string databasePath)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = databasePath, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "CREATE TABLE IF NOT EXISTS analytics_samples (ts INTEGER NOT NULL PRIMARY KEY, sample TEXT NOT NULL)";
        command.ExecuteNonQuery();
    }

    public void Add(long unixSeconds, string sampleJson, long keepAfterUnixSeconds)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        using (var insert = connection.CreateCommand())
        {
            insert.CommandText = "INSERT OR REPLACE INTO analytics_samples (ts, sample) VALUES ($ts, $sample)";
            insert.Parameters.AddWithValue("$ts", unixSeconds);
            insert.Parameters.AddWithValue("$sample", sampleJson);
            insert.ExecuteNonQuery();
        }

        using (var prune = connection.CreateCommand())
        {
            prune.CommandText = "DELETE FROM analytics_samples WHERE ts < $keep";
            prune.Parameters.AddWithValue("$keep", keepAfterUnixSeconds);
            prune.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    /// <summary>Samples at or after <paramref name="sinceUnixSeconds"/>, oldest first, as stored JSON.</summary>
    public List<string> Since(long sinceUnixSeconds)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT sample FROM analytics_samples WHERE ts >= $since ORDER BY ts";
        command.Parameters.AddWithValue("$since", sinceUnixSeconds);
        using var reader = command.ExecuteReader();
        var result = new List<string>();
        while (reader.Read())
        {
            result.Add(reader.GetString(0));
        }

        return result;
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }
}
