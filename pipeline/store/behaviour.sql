-- Behaviour per subject and day for [$start, $end]: the mean per attempt of what its transcript
-- shows (pipeline.agents.trajectory). Only attempts with a transcript that was read count (the
-- simulated, replay and command adapters leave these columns null: no row, never zeros), and
-- only those the agent itself ended: an attempt never launched or cut short by the model API
-- says nothing about how the agent works. Thinking is averaged over the attempts that show it.
SELECT date, subject, count(*) AS attempts,
       avg(tool_calls) AS tool_calls, avg(shell_commands) AS shell_commands,
       avg(test_runs) AS test_runs, avg(edits) AS edits,
       avg(files_read_before_first_edit) AS files_read_before_first_edit,
       avg(thinking_chars) AS thinking_chars, count(thinking_chars) AS thinking_attempts,
       avg((test_runs > 0)::INT) AS tested_share
FROM attempts
WHERE date BETWEEN $start AND $end AND tool_calls IS NOT NULL AND exit_class NOT IN ({not_behaviour})
GROUP BY ALL
ORDER BY subject, date
