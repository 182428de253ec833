from ..cli.train import main_evaluate

if __name__ == "__main__":
    main_evaluate()
