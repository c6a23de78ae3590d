using System.Globalization;
using System.Text;
using Recsys.DenseCompute.Models;

namespace Recsys.DenseCompute.Accuracy;

/// <summary>The two layouts <see cref="ClickTsv"/> reads.</summary>
public enum ClickTsvFormat
{
    /// <summary>Label, the model's dense features as floats, then one column per table of comma-separated ids; any DLRM.</summary>
    Recsys,

    /// <summary>Criteo's: label, 13 integer features, 26 hex categorical ids (empty = missing); models with 13 dense features and 26 tables.</summary>
    Criteo,
}

/// <summary>Labelled samples as tab-separated text, one sample per line (see <see cref="ClickTsvFormat"/>).</summary>
public static class ClickTsv
{
    public const int CriteoDense = 13;
    public const int CriteoTables = 26;

    /// <param name="limit">Read at most this many samples (0: all).</param>
    /// <exception cref="ModelFileException">A line does not fit the model; the message names the file, line and column.</exception>
    public static ClickData Read(string path, DlrmSpec spec, ClickTsvFormat format = ClickTsvFormat.Recsys, int limit = 0)
    {
        if (!File.Exists(path)) throw new ModelFileException(path, "file", "does not exist");
        int f = spec.DenseFeatures, tables = spec.Tables.Length;
        int columns = 1 + f + tables;
        bool criteo = format == ClickTsvFormat.Criteo;
        if (criteo && (f != CriteoDense || tables != CriteoTables))
        {
            throw new ModelFileException(path, "format", $"Criteo files fit models with {CriteoDense} dense features and {CriteoTables} tables; this model has {f} and {tables}");
        }
        var dense = new List<float>();
        var ids = Enumerable.Range(0, tables).Select(_ => new List<long>()).ToArray();
        var offsets = Enumerable.Range(0, tables).Select(_ => new List<int> { 0 }).ToArray();
        var labels = new List<byte>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            string[] cols = line.Split('\t');
            string where = $"line {lineNumber}";
            if (cols.Length != columns) throw new ModelFileException(path, where, $"has {cols.Length} columns; the model needs {columns} (label, {f} dense, {tables} tables)");
            labels.Add(cols[0] switch
            {
                "0" => 0,
                "1" => 1,
                _ => throw new ModelFileException(path, $"{where}, column 1 (label)", $"'{cols[0]}' is not 0 or 1"),
            });
            for (int i = 0; i < f; i++) dense.Add(criteo ? CriteoDenseValue(cols[1 + i], path, where, i) : FloatValue(cols[1 + i], path, where, 1 + i));
            for (int t = 0; t < tables; t++)
            {
                string cell = cols[1 + f + t];
                long rows = spec.Tables[t].Rows;
                if (criteo) ids[t].Add(CriteoId(cell, rows, path, where, 1 + f + t));
                else AddIds(cell, rows, ids[t], path, where, 1 + f + t, spec.Tables[t].Name);
                offsets[t].Add(ids[t].Count);
            }
            if (limit > 0 && labels.Count == limit) break;
        }
        if (labels.Count == 0) throw new ModelFileException(path, "file", "holds no samples");
        return new ClickData(f, [.. dense], [.. ids.Select(l => l.ToArray())], [.. offsets.Select(l => l.ToArray())], [.. labels]);
    }

    /// <summary>Writes the Recsys layout (any DLRM), readable back by <see cref="Read"/>.</summary>
    public static void Write(string path, ClickData data)
    {
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false));
        var line = new StringBuilder();
        for (int s = 0; s < data.Samples; s++)
        {
            line.Clear().Append(data.Labels[s]);
            for (int i = 0; i < data.DenseFeatures; i++) line.Append('\t').Append(data.Dense[s * data.DenseFeatures + i].ToString("R", CultureInfo.InvariantCulture));
            for (int t = 0; t < data.Ids.Length; t++)
            {
                line.Append('\t');
                for (int k = data.Offsets[t][s]; k < data.Offsets[t][s + 1]; k++)
                {
                    if (k > data.Offsets[t][s]) line.Append(',');
                    line.Append(data.Ids[t][k]);
                }
            }
            writer.WriteLine(line);
        }
    }

    /// <summary>The reference DLRM's transform: log(1 + x), negatives and missing as 0.</summary>
    private static float CriteoDenseValue(string cell, string path, string where, int feature)
    {
        if (cell.Length == 0) return 0;
        if (!long.TryParse(cell, NumberStyles.Integer, CultureInfo.InvariantCulture, out long x)) throw new ModelFileException(path, $"{where}, column {2 + feature} (I{feature + 1})", $"'{cell}' is not an integer");
        return (float)Math.Log(1 + Math.Max(0, x));
    }

    private static long CriteoId(string cell, long rows, string path, string where, int column)
    {
        if (cell.Length == 0) return 0;
        if (!ulong.TryParse(cell, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong hash)) throw new ModelFileException(path, $"{where}, column {column + 1}", $"'{cell}' is not a hex id");
        return (long)(hash % (ulong)rows);
    }

    private static float FloatValue(string cell, string path, string where, int column)
    {
        if (!float.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) || !float.IsFinite(v))
        {
            throw new ModelFileException(path, $"{where}, column {column + 1}", $"'{cell}' is not a finite number");
        }
        return v;
    }

    private static void AddIds(string cell, long rows, List<long> into, string path, string where, int column, string table)
    {
        if (cell.Length == 0) throw new ModelFileException(path, $"{where}, column {column + 1} (table {table})", "is empty; every bag needs at least one id");
        foreach (string part in cell.Split(','))
        {
            if (!long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long id) || id < 0 || id >= rows)
            {
                throw new ModelFileException(path, $"{where}, column {column + 1} (table {table})", $"'{part}' is not an id in [0, {rows})");
            }
            into.Add(id);
        }
    }
}
