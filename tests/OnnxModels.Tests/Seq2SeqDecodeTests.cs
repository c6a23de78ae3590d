using Recsys.OnnxModels.Seq2Seq;

namespace Recsys.OnnxModels.Tests;

/// <summary>
/// Greedy and beam-search decodes through ONNX Runtime equal the PyTorch reference decodes token for
/// token, alone, all together in one continuous batch, and with requests joining mid-decode.
/// </summary>
public sealed class Seq2SeqDecodeTests(Seq2SeqFixture fixture) : IClassFixture<Seq2SeqFixture>
{
    public static TheoryData<int> CaseIndexes => [.. Enumerable.Range(0, 10)];

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public void Each_source_decoded_alone_equals_the_reference(int index)
    {
        ReferenceCase c = fixture.Cases[index];
        DecodeBatch batch = fixture.Model.CreateBatch();
        Task<DecodeResult> result = batch.Submit(c.Source, c.Options, long.MaxValue);

        while (batch.RunStep()) Assert.True(batch.LastStepRows <= c.Beam);

        Seq2SeqFixture.AssertMatches(c, result.Result);
    }

    [Fact]
    public void The_fixture_covers_greedy_beams_and_cut_hypotheses()
    {
        Assert.Contains(fixture.Cases, c => c.Beam == 1);
        Assert.Contains(fixture.Cases, c => c.Beam >= 4 && c.NBest > 1);
        Assert.Contains(fixture.Cases, c => c.Hypotheses.Any(h => !h.Finished));
        Assert.True(fixture.Cases.Select(c => c.Source.Length).Distinct().Count() >= 5);
    }

    [Fact]
    public void Sources_of_different_lengths_decoded_in_one_batch_equal_the_references()
    {
        DecodeBatch batch = fixture.Model.CreateBatch();
        var results = fixture.Cases.Select(c => batch.Submit(c.Source, c.Options, long.MaxValue)).ToList();
        int widest = 0;

        while (batch.RunStep()) widest = Math.Max(widest, batch.LastStepRows);

        for (int i = 0; i < results.Count; i++) Seq2SeqFixture.AssertMatches(fixture.Cases[i], results[i].Result);
        // Every request's first step shared one decoder run: one row each.
        Assert.True(widest >= fixture.Cases.Count, $"widest step had {widest} rows");
    }

    [Fact]
    public void Requests_joining_mid_decode_equal_the_references_and_short_ones_leave_early()
    {
        DecodeBatch batch = fixture.Model.CreateBatch();
        // The longest decodes start first; the rest arrive two at a time every third step.
        var order = Enumerable.Range(0, fixture.Cases.Count).OrderByDescending(i => fixture.Cases[i].Hypotheses.Max(h => h.Ids.Length)).ToList();
        var results = new Task<DecodeResult>[fixture.Cases.Count];
        int submitted = 0, step = 0;
        var joinedWhileBusy = new List<int>();
        while (submitted < order.Count || batch.HasWork)
        {
            if (step % 3 == 0)
            {
                for (int k = 0; k < 2 && submitted < order.Count; k++, submitted++)
                {
                    int i = order[submitted];
                    if (batch.LiveRequests > 0) joinedWhileBusy.Add(i);
                    results[i] = batch.Submit(fixture.Cases[i].Source, fixture.Cases[i].Options, long.MaxValue);
                }
            }
            batch.RunStep();
            step++;
        }

        for (int i = 0; i < results.Length; i++) Seq2SeqFixture.AssertMatches(fixture.Cases[i], results[i].Result);
        Assert.True(joinedWhileBusy.Count >= 4, $"only {joinedWhileBusy.Count} requests joined a running batch");
        // A short decode that joined late finished in its own few steps, not the long one's.
        int longest = order[0];
        int shortLate = joinedWhileBusy.OrderBy(i => results[i].Result.Steps).First();
        Assert.True(results[shortLate].Result.Steps < results[longest].Result.Steps);
    }

    [Fact]
    public void A_cancelled_request_leaves_the_batch_and_the_others_stay_correct()
    {
        DecodeBatch batch = fixture.Model.CreateBatch();
        using var cancel = new CancellationTokenSource();
        var results = fixture.Cases.Select((c, i) => batch.Submit(c.Source, c.Options, long.MaxValue, i == 2 ? cancel.Token : default)).ToList();
        batch.RunStep();
        batch.RunStep();
        cancel.Cancel();

        while (batch.RunStep())
        {
        }

        Assert.True(results[2].IsCanceled);
        for (int i = 0; i < results.Count; i++)
        {
            if (i != 2) Seq2SeqFixture.AssertMatches(fixture.Cases[i], results[i].Result);
        }
    }

    [Fact]
    public void Greedy_is_beam_one_and_the_first_of_a_wider_beam_is_no_worse()
    {
        ReferenceCase c = fixture.Cases.First(x => x.Beam >= 4);
        DecodeBatch batch = fixture.Model.CreateBatch();
        Task<DecodeResult> greedy = batch.Submit(c.Source, c.Options with { Beam = 1, NBest = 1 }, long.MaxValue);
        Task<DecodeResult> beam = batch.Submit(c.Source, c.Options, long.MaxValue);
        while (batch.RunStep())
        {
        }
        Assert.True(beam.Result.Hypotheses[0].Score >= greedy.Result.Hypotheses[0].Score - 1e-9);
    }

    [Fact]
    public void Text_goes_through_the_vocabulary_both_ways()
    {
        foreach (ReferenceCase c in fixture.Cases)
        {
            Assert.Equal(c.Source, fixture.Model.EncodeText(c.Text));
            for (int i = 0; i < c.Hypotheses.Count; i++) Assert.Equal(c.Texts[i], fixture.Model.Decode(c.Hypotheses[i].Ids));
        }
        Assert.Equal([4, 3, 5], fixture.Model.EncodeText("  bala  nowordhere\tbana "));
    }
}
