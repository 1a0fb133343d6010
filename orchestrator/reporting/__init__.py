"""What a person looks at: the campaign's HTML report, Bode plots and topology drawings."""
